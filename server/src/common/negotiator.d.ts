/** The part of negotiator 1.x (Express's own content negotiation) used here; its package has no types of its own. */
declare module 'negotiator' {
  export default class Negotiator {
    constructor(request: { headers: Record<string, string | string[] | undefined> });
    /** The encodings of `available` the request accepts, best first; ties of quality broken by `preferred`'s order. */
    encodings(available?: string[], options?: { preferred?: string[] }): string[];
  }
}
