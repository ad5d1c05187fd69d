// Package client is a Go client of hubexport's HTTP API: it creates export
// jobs, follows them through their event stream (polling when the stream is
// unavailable or breaks off), downloads their files checking size and
// SHA-256 against the job, uploads restore dumps and manages schedules.
// The hubexport command's export and schedule commands are built on it.
//
// It owns the wire: requests, the API's error answers (*APIError), the job
// object (Job) and the event stream's format. It must not print, draw or
// choose files: progress is reported through callbacks and downloads go to
// an io.Writer the caller hands it. It imports only the standard library,
// so that programs outside this module can use it.
package client
