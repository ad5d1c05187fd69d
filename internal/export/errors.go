package export

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind classifies an error for the transport: web maps each kind to one
// HTTP status, in one place.
type Kind int

const (
	KindInternal        Kind = iota // our fault; logged, message kept generic
	KindInvalid                     // bad input (400)
	KindUnauthenticated             // no or bad credential (401)
	KindForbidden                   // valid credential, not allowed (403)
	KindNotFound                    // absent, or not the caller's (404)
	KindConflict                    // state does not allow it (409)
	KindGone                        // existed, no longer available (410)
	KindTooLarge                    // request body too large (413)
	KindTooMany                     // over a limit, retry later (429)
	KindUnavailable                 // a dependency is down (503)
)

// Error is an error a user may see: a stable snake_case code, a message
// that says what went wrong and what to do, and, for bad input, the fields
// at fault ("params.start_time": "must be before end_time").
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	Fields     map[string]string
	RetryAfter time.Duration
	Err        error // cause, never shown to users
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) and friends match any *Error of the
// same kind and code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

// Sentinels, matched with errors.Is.
var (
	ErrNotFound        = &Error{Kind: KindNotFound, Code: "not_found", Message: "no such export job"}
	ErrUnauthenticated = &Error{Kind: KindUnauthenticated, Code: "unauthenticated", Message: "send a valid API key or the admin token as 'Authorization: Bearer <token>'"}
)

// Invalid builds a bad-input error naming one field.
func Invalid(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if field == "" {
		field = "body"
	}
	return &Error{Kind: KindInvalid, Code: "invalid_request", Message: field + ": " + msg, Fields: map[string]string{field: msg}}
}

// Errorf builds an error of the given kind and code.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, KindInternal for errors that are not ours.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Attempt bookkeeping errors, shared by the job store and the workers.
var (
	// ErrJobEnded: the job has already ended; a re-delivered task has
	// nothing to do.
	ErrJobEnded = errors.New("export: job has ended")
	// ErrSuperseded: an attempt no longer owns its job: the job was
	// canceled, or a newer attempt took it over.
	ErrSuperseded = errors.New("export: attempt superseded")
)

// IsText reports whether s can be stored and shown as text: valid UTF-8
// without NUL bytes (PostgreSQL's text refuses both).
func IsText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// Printable returns s unchanged when every rune of it prints, else s
// escaped as a Go string literal's body (`\x00`, `\xc0`, `\n`): input a
// refusal records must keep what was sent, visibly.
func Printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
