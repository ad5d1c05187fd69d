// Package hub reads Claude Code Hub's PostgreSQL database: the probe logs an export streams,
// the users and keys that decide who a caller is (CCH's validity rules, hub-facts §6),
// behind a small cache of successful lookups, and the lists of users, keys, providers and
// endpoints that the web page's selectors show (never a key string); and, from CCH's Redis, the
// per-request session snapshots a session_request export copies (hub-facts §4), checked against
// message_request as CCH checks them.
//
// It owns the SQL against CCH's tables and the reads of CCH's Redis keys, nothing else. It only
// reads: it must never run DDL or write to the hub's public schema (hubexport's own tables live
// in schema hubexport and belong to another package), never write CCH's Redis keys, and it must
// never log or store a raw API key.
package hub
