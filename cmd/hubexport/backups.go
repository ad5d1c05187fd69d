package main

import (
	"errors"
	"strings"

	"github.com/hubexport/hubexport/internal/config"
	"github.com/hubexport/hubexport/internal/pgdump"
	"github.com/hubexport/hubexport/jobs"
)

// databaseTools is what backup and restore jobs share: DATABASE_URL as the
// tools read it, where the tools are, and the backup lock's connections.
func databaseTools(cfg *config.Config, d *deps) (*jobs.DatabaseTools, error) {
	conn, err := pgdump.ParseDSN(cfg.DatabaseURL)
	if err != nil {
		return nil, errors.New("DATABASE_URL cannot be read for pg_dump: " + err.Error())
	}
	return &jobs.DatabaseTools{
		Conn:           conn,
		Tools:          pgdump.ToolConfig{PgDumpPath: cfg.Backup.PgDumpPath, PgRestorePath: cfg.Backup.PgRestorePath},
		LockRedis:      d.hubRdb,
		LockPool:       d.pool,
		LockWait:       cfg.Backup.LockWait,
		LockRenewEvery: cfg.Backup.LockRenew,
	}, nil
}

// checkDatabaseURL validates a restore's target_database_url as pg_restore
// will read it. Its errors never quote the URL.
func checkDatabaseURL(s string) error {
	if _, err := pgdump.ParseDSN(s); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "pgdump: parse database URL: "))
	}
	return nil
}

// verifyAdmin is where restore drills create their scratch databases:
// VERIFY_DATABASE_URL, else DATABASE_URL's server.
func verifyAdmin(cfg *config.Config) (pgdump.Conn, error) {
	name, dsn := "VERIFY_DATABASE_URL", cfg.Backup.VerifyDatabaseURL
	if dsn == "" {
		name, dsn = "DATABASE_URL", cfg.DatabaseURL
	}
	conn, err := pgdump.ParseDSN(dsn)
	if err != nil {
		return pgdump.Conn{}, errors.New(name + " cannot be read for restore drills: " + err.Error())
	}
	return conn, nil
}
