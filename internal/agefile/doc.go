// Package agefile owns hubexport's use of the age file format: reading
// recipients (age X25519 keys and SSH public keys, one per line as in
// `age -R` files) and identities (age secret keys or an SSH private key),
// naming recipients by fingerprint, telling an age file from anything else,
// and wrapping filippo.io/age's encryption and decryption streams.
//
// It writes no crypto of its own and knows nothing of jobs, storage or
// configuration variables: callers name the variable or field a bad line
// came from. Its errors never quote private key material.
package agefile
