import { type DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';
import { runMigrationsOnce } from './run-migrations.js';
import { SqliteCheckpointService } from './sqlite-checkpointer.js';
import { SqliteReadService } from './sqlite-reader.js';

/** Opens the database and applies pending migrations before any other module can query it. */
@Module({})
export class DatabaseModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: DatabaseModule,
      // Its services (the SQLite read worker) serve every feature's repositories.
      global: true,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => dataSourceOptions(config.database),
          dataSourceFactory: async (options) => {
            const ds = await new DataSource(options!).initialize();
            await runMigrationsOnce(ds);
            return ds;
          },
        }),
      ],
      providers: [SqliteCheckpointService, SqliteReadService],
      exports: [SqliteCheckpointService, SqliteReadService],
    };
  }
}
