// Package scratch owns hubexport's temporary directories in TMPDIR (restore dumps being
// read): each is named with its process id and locked with flock(2)
// by the process that made it for as long as it is in use. The kernel drops the lock
// when the process dies, however it dies, so Sweep can tell a killed worker's leftovers from a
// live one's work and remove only the former.
//
// It knows nothing of jobs, exports or storage.
package scratch
