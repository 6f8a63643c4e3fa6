import { Body, Controller, Delete, Get, Header, HttpCode, Param, Post, Query, Req, StreamableFile, UploadedFile, UseInterceptors } from '@nestjs/common';
import {
  ApiBearerAuth, ApiBody, ApiConsumes, ApiCookieAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse,
  ApiOperation, ApiProduces, ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.js';
import { ErrorCode } from '../common/error-code.js';
import { CurrentSession } from '../common/decorators.js';
import type { AuthContext } from '../common/request-context.js';
import { FileDetailDto, FileDto, FileIdParamDto, FileListDto, ListFilesQueryDto, UploadedFileDto, UploadFileDto } from './file.dto.js';
import { attachmentDisposition } from './filename-sanitizer.js';
import { FilesService } from './files.service.js';
import type { ReceivedUpload } from './temp-upload-storage.js';
import { UploadInterceptor, type UploadRequest } from './upload.interceptor.js';

@ApiTags('files')
@ApiCookieAuth() @ApiBearerAuth()
@Controller('api/v1/files')
export class FilesController {
  constructor(private readonly files: FilesService) {}

  @Post('upload')
  @UseInterceptors(UploadInterceptor)
  @ApiOperation({
    summary: 'Upload a file whose text becomes context for the chat (.txt .md .pdf .py .js .json by default)',
    description: 'A file never sent with a message (`file_ids` of POST /api/v1/chat) is deleted UNSENT_FILE_TTL_HOURS (24 by default) after its upload.',
  })
  @ApiConsumes('multipart/form-data')
  @ApiBody({
    schema: {
      type: 'object', required: ['file'],
      properties: {
        file: { type: 'string', format: 'binary' },
        conversation_id: { type: 'string', format: 'uuid' },
        session_id: { type: 'string', format: 'uuid' },
      },
    },
  })
  @ApiCreatedResponse({ type: UploadedFileDto })
  @ApiErrors(ErrorCode.SessionNotFound, ErrorCode.ConversationNotFound, ErrorCode.FileTooLarge, ErrorCode.QuotaExceeded, ErrorCode.UnsupportedFileType, ErrorCode.FileProcessingError, ErrorCode.ServiceUnavailable)
  async upload(
    @UploadedFile() file: ReceivedUpload | undefined, @Body() body: UploadFileDto, @CurrentSession() caller: AuthContext, @Req() req: UploadRequest,
  ): Promise<UploadedFileDto> {
    return UploadedFileDto.from(await this.files.upload(caller.sessionId, file, body, req.uploadClient));
  }

  @Get()
  @ApiOperation({ summary: 'A page of the caller\'s files (or one conversation\'s), newest first, with how many there are' })
  @ApiOkResponse({ type: FileListDto })
  @ApiErrors(ErrorCode.SessionNotFound, ErrorCode.ConversationNotFound)
  async list(@Query() query: ListFilesQueryDto, @CurrentSession() caller: AuthContext): Promise<FileListDto> {
    const { items, total } = await this.files.list(caller.sessionId, query);
    return { files: items.map((f) => FileDto.from(f)), total, limit: query.limit, offset: query.offset };
  }

  @Get(':id')
  @ApiOperation({ summary: 'A file\'s metadata and its whole extracted text' })
  @ApiOkResponse({ type: FileDetailDto })
  @ApiErrors(ErrorCode.FileNotFound)
  async findOne(@Param() { id }: FileIdParamDto, @CurrentSession() caller: AuthContext): Promise<FileDetailDto> {
    return FileDetailDto.from(await this.files.findOwned(caller.sessionId, id));
  }

  @Get(':id/content')
  // Whatever the bytes are (an .md full of HTML, say), the browser only ever saves them.
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Content-Security-Policy', "default-src 'none'; sandbox")
  @ApiOperation({ summary: 'Download the original file (always as an attachment)' })
  @ApiProduces('application/octet-stream')
  @ApiOkResponse({
    schema: { type: 'string', format: 'binary' },
    headers: { 'Content-Disposition': { description: 'attachment, with the original file name (filename and filename*)', schema: { type: 'string' } } },
  })
  @ApiErrors(ErrorCode.FileNotFound)
  async download(@Param() { id }: FileIdParamDto, @CurrentSession() caller: AuthContext): Promise<StreamableFile> {
    const { file, stream, size } = await this.files.openContent(caller.sessionId, id);
    return new StreamableFile(stream, { type: 'application/octet-stream', disposition: attachmentDisposition(file.filename), length: size });
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a file (its row, and its bytes once nothing else refers to them)' })
  @ApiNoContentResponse()
  @ApiErrors(ErrorCode.FileNotFound)
  remove(@Param() { id }: FileIdParamDto, @CurrentSession() caller: AuthContext): Promise<void> {
    return this.files.remove(caller.sessionId, id);
  }
}
