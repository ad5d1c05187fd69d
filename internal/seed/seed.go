package seed

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed schema.sql
var schemaSQL string

// indexMarker separates the tables from the indexes in schema.sql.
const indexMarker = "-- @@indexes@@"

// Schema returns the hub schema DDL in two parts: the enum and tables, then the indexes. Both are
// idempotent. Tests that want the hub's tables without the seeded data run both parts.
func Schema() (tables, indexes string) {
	tables, indexes, ok := strings.Cut(schemaSQL, indexMarker)
	if !ok {
		panic("seed: schema.sql lacks the " + indexMarker + " marker")
	}
	return tables, indexes
}

// ErrNotEmpty is returned by Run for a database that already holds hub data.
var ErrNotEmpty = errors.New("seed: the database already has hub data; seed only fills an empty database, so point it at a new one")

// Options say how much to generate and from what.
type Options struct {
	// Rows is the number of message_request rows.
	Rows int
	// Seed makes the data reproducible: the same Rows, Seed and Now give the same rows.
	Seed int64
	// Now is the newest request's created_at; requests spread over the 30 days before it and
	// probe logs over the day before it. Required.
	Now time.Time
	// Log receives progress events; nil discards them.
	Log *slog.Logger
}

// Report counts what Run wrote.
type Report struct {
	Users      int64
	Keys       int64
	Providers  int64
	Requests   int64
	LedgerRows int64
	Endpoints  int64
	ProbeLogs  int64
	Duration   time.Duration
}

// maxWidth caps the connections Run uses at once: index builds are CPU-bound on the server.
const maxWidth = 4

// Run creates the hub schema where it is missing and fills it. It refuses with ErrNotEmpty when
// any hub table it fills already has rows.
//
// To be fast it loads the tables before building their indexes, and loads and indexes on up to
// four of the pool's connections at once, so it is not one transaction: a run that fails after
// the load started leaves a partly seeded database, which a new run refuses. Seed a fresh
// database then.
func Run(ctx context.Context, pool *pgxpool.Pool, opts Options) (rep Report, err error) {
	start := time.Now()
	if opts.Rows < 0 {
		return Report{}, fmt.Errorf("seed: rows must be zero or more, not %d", opts.Rows)
	}
	if opts.Now.IsZero() {
		return Report{}, errors.New("seed: Options.Now is required (the newest request's time)")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Postgres keeps microseconds; truncating keeps generated and stored times equal.
	now := opts.Now.Truncate(time.Microsecond)

	held, err := pool.Acquire(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("seed: connect: %w", err)
	}
	defer held.Release()
	conn := held.Conn()
	// Two seeds racing on one database would both see it empty; the lock makes the second wait
	// and then find the first one's rows. It is a session lock because the run spans several
	// transactions; it also ends if the connection dies.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('hubexport:seed'))"); err != nil {
		return Report{}, fmt.Errorf("seed: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext('hubexport:seed'))") //nolint:errcheck // the lock ends with the session anyway

	if err := checkEmpty(ctx, conn); err != nil {
		return Report{}, err
	}
	tables, indexes := Schema()
	if _, err := conn.Exec(ctx, tables); err != nil {
		return Report{}, fmt.Errorf("seed: create tables: %w", err)
	}
	// A hub schema with CCH's own trigger writes the ledger itself during the request COPY.
	var hasTrigger bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'public.message_request'::regclass AND NOT tgisinternal)`).Scan(&hasTrigger); err != nil {
		return Report{}, fmt.Errorf("seed: look for triggers: %w", err)
	}
	defer func() {
		if err != nil && !errors.Is(err, ErrNotEmpty) {
			err = fmt.Errorf("%w (the database may now be partly seeded: seed a new, empty one)", err)
		}
	}()
	width := min(maxWidth, int(pool.Config().MaxConns))
	log.InfoContext(ctx, "seed_start", "rows", opts.Rows, "seed", opts.Seed, "now", now, "connections", width)

	w := newWorld(now, newWorldRand(opts.Seed))
	t := time.Now()
	load := []connJob{func(ctx context.Context, c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if err := insertFixtures(ctx, tx, w, &rep); err != nil {
				return err
			}
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"message_request"}, requestColumns, &requestSource{g: newReqGen(w, opts.Seed, opts.Rows)})
			if err != nil {
				return fmt.Errorf("seed: copy message_request: %w", err)
			}
			rep.Requests = n
			if rep.ProbeLogs, err = tx.CopyFrom(ctx, pgx.Identifier{"provider_endpoint_probe_logs"}, probeColumns, pgx.CopyFromRows(probeRows(w, opts.Seed))); err != nil {
				return fmt.Errorf("seed: copy probe logs: %w", err)
			}
			if _, err := tx.Exec(ctx, lastProbeSQL); err != nil {
				return fmt.Errorf("seed: record last probes: %w", err)
			}
			return nil
		})
	}}
	if !hasTrigger {
		load = append(load, func(ctx context.Context, c *pgx.Conn) error {
			n, err := c.CopyFrom(ctx, pgx.Identifier{"usage_ledger"}, ledgerColumns, newLedgerSource(newReqGen(w, opts.Seed, opts.Rows)))
			if err != nil {
				return fmt.Errorf("seed: copy usage_ledger: %w", err)
			}
			rep.LedgerRows = n
			return nil
		})
	}
	if err := parallel(ctx, pool, conn, width, load); err != nil {
		return Report{}, err
	}
	if hasTrigger {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM usage_ledger").Scan(&rep.LedgerRows); err != nil {
			return Report{}, fmt.Errorf("seed: count usage_ledger: %w", err)
		}
	}
	log.InfoContext(ctx, "seed_rows_loaded", "requests", rep.Requests, "ledger_rows", rep.LedgerRows, "ledger_by_trigger", hasTrigger, "duration_ms", time.Since(t).Milliseconds())

	// Building the indexes after the load is twice as fast as maintaining them row
	// by row (measured: 100 s instead of 45 s for a million requests). The builds are CPU-bound
	// in Postgres, so running several at once pays off on servers with more than two cores.
	t = time.Now()
	var build []connJob
	for _, stmt := range indexStatements(indexes) {
		build = append(build, func(ctx context.Context, c *pgx.Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
					return fmt.Errorf("seed: set maintenance_work_mem: %w", err)
				}
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("seed: create index: %w", err)
				}
				return nil
			})
		})
	}
	if err := parallel(ctx, pool, conn, width, build); err != nil {
		return Report{}, err
	}
	log.InfoContext(ctx, "seed_indexes_built", "indexes", len(build), "duration_ms", time.Since(t).Milliseconds())

	// Explicit ids leave the serial sequences behind; the hub's next insert must not collide.
	for _, table := range seededTables {
		q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence('public.%[1]s', 'id'), COALESCE((SELECT max(id) FROM public.%[1]s), 0) + 1, false)", table)
		if _, err := conn.Exec(ctx, q); err != nil {
			return Report{}, fmt.Errorf("seed: reset sequence of %s: %w", table, err)
		}
	}
	// Fresh statistics, so the first exports plan like they would on a live hub.
	if _, err := conn.Exec(ctx, "ANALYZE "+strings.Join(seededTables, ", ")); err != nil {
		return Report{}, fmt.Errorf("seed: analyze: %w", err)
	}
	rep.Duration = time.Since(start)
	log.InfoContext(ctx, "seed_done", "requests", rep.Requests, "ledger_rows", rep.LedgerRows, "probe_logs", rep.ProbeLogs, "duration_ms", rep.Duration.Milliseconds())
	return rep, nil
}

var seededTables = []string{
	"users", "keys", "provider_vendors", "providers", "message_request", "usage_ledger",
	"provider_endpoints", "provider_endpoint_probe_logs", "system_settings", "model_prices",
}

// Seeded tells whether any table Run fills already holds rows (Run would return ErrNotEmpty).
func Seeded(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("seed: connect: %w", err)
	}
	defer conn.Release()
	err = checkEmpty(ctx, conn.Conn())
	if errors.Is(err, ErrNotEmpty) {
		return true, nil
	}
	return false, err
}

// checkEmpty refuses a database where any table the seed fills has rows, before any DDL.
func checkEmpty(ctx context.Context, conn *pgx.Conn) error {
	for _, table := range seededTables {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", "public."+table).Scan(&exists); err != nil {
			return fmt.Errorf("seed: look for %s: %w", table, err)
		}
		if !exists {
			continue
		}
		var hasRows bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM public."+table+")").Scan(&hasRows); err != nil {
			return fmt.Errorf("seed: check %s: %w", table, err)
		}
		if hasRows {
			return fmt.Errorf("%w (%s has rows)", ErrNotEmpty, table)
		}
	}
	return nil
}

// indexStatements splits the index DDL into statements, the big tables' first so that the
// longest builds start early.
func indexStatements(ddl string) []string {
	var big, small []string
	for line := range strings.Lines(ddl) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "CREATE ") {
			continue
		}
		if strings.Contains(line, " ON message_request ") || strings.Contains(line, " ON usage_ledger ") {
			big = append(big, line)
		} else {
			small = append(small, line)
		}
	}
	return append(big, small...)
}

type connJob func(ctx context.Context, c *pgx.Conn) error

// parallel runs jobs on up to width connections: held plus width-1 more from pool. The first
// error cancels the rest.
func parallel(ctx context.Context, pool *pgxpool.Pool, held *pgx.Conn, width int, jobs []connJob) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queue := make(chan connJob, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	work := func(c *pgx.Conn) {
		for job := range queue {
			if ctx.Err() != nil {
				return
			}
			if err := job(ctx, c); err != nil {
				cancel(err)
				return
			}
		}
	}
	var wg sync.WaitGroup
	for range min(width, len(jobs)) - 1 {
		wg.Go(func() {
			pc, err := pool.Acquire(ctx)
			if err != nil {
				cancel(fmt.Errorf("seed: connect: %w", err))
				return
			}
			defer pc.Release()
			work(pc.Conn())
		})
	}
	work(held)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

const lastProbeSQL = `
UPDATE provider_endpoints e SET
	last_probed_at = l.created_at, last_probe_ok = l.ok, last_probe_status_code = l.status_code,
	last_probe_latency_ms = l.latency_ms, last_probe_error_type = l.error_type,
	last_probe_error_message = l.error_message
FROM (
	SELECT DISTINCT ON (endpoint_id) *
	FROM provider_endpoint_probe_logs
	ORDER BY endpoint_id, created_at DESC NULLS LAST, id DESC
) l
WHERE l.endpoint_id = e.id`
