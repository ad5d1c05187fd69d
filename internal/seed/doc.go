// Package seed fills a database with a CCH-shaped schema (the hub tables as Claude Code Hub's
// migrations leave them, hub-facts §1.4) and realistic, deterministic synthetic data: users and
// keys with awkward names, providers, a month of message_request rows with the matching
// usage_ledger rows, provider endpoints and a day of probe logs; and, in CCH's Redis, the
// per-request session snapshots of a few recent sessions (WriteSessions), as CCH's session
// manager writes them. It backs `hubexport seed` and `hubexport demo`, the tests of the packages
// that read the hub, and the benchmarks.
//
// It is the only code in hubexport that runs DDL in the public schema, and it only ever fills
// an empty database: Run refuses when any table it fills already holds rows, so it can never
// touch a real hub's data. The service must not import it; only the seed and demo commands and tests do.
package seed
