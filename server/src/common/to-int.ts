/**
 * class-transformer: a string of decimal digits (an optional minus) becomes its number; anything else stays
 * as given, for @IsInt to refuse ('' and '1e1' became 0 and 10 through Number()).
 */
export const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
