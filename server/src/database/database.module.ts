import { type DynamicModule, Logger, Module } from '@nestjs/common';
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
            const applied = await runMigrationsOnce(ds);
            // After an upgrade the log says what ran.
            if (applied.length > 0) new Logger('Database').log({ migrations: applied }, 'migrations applied');
            return ds;
          },
        }),
      ],
      providers: [SqliteCheckpointService, SqliteReadService],
      exports: [SqliteCheckpointService, SqliteReadService],
    };
  }
}
