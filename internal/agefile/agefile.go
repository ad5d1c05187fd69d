package agefile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"
)

// header starts every binary age file; armor.Header starts an ASCII-armored one (age -a).
const header = "age-encryption.org/v1\n"

// Recipient is one public key a file is encrypted to.
type Recipient struct {
	// Text is the key as given: "age1…" or "ssh-ed25519 AAAA…" (without the comment).
	Text string
	// Fingerprint names the key without its full text: the age1 key itself for X25519 (what
	// `age-keygen -y` prints), and "ssh-ed25519 SHA256:…" for SSH keys (what `ssh-keygen -l`
	// prints).
	Fingerprint string
	r           age.Recipient
}

// ParseRecipient reads one recipient: an age X25519 public key (age1…), or an SSH ssh-ed25519
// or ssh-rsa public key in authorized_keys form (a trailing comment is allowed).
func ParseRecipient(s string) (Recipient, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Recipient{}, errors.New("is empty")
	case strings.HasPrefix(s, "AGE-SECRET-KEY-"), strings.HasPrefix(s, "-----BEGIN"):
		// Never echo it: it is private.
		return Recipient{}, errors.New("is a private key, not a recipient; give the public key (age-keygen -y prints it)")
	case strings.HasPrefix(s, "age1pq1"):
		return Recipient{}, errors.New("is a post-quantum age recipient, which Debian's age command cannot decrypt; use an X25519 recipient (age1…, from age-keygen)")
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return Recipient{}, fmt.Errorf("is not an age X25519 recipient (plugin recipients are not supported): %v", err)
		}
		return Recipient{Text: s, Fingerprint: s, r: r}, nil
	case strings.HasPrefix(s, "ssh-ed25519 "), strings.HasPrefix(s, "ssh-rsa "):
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return Recipient{}, fmt.Errorf("is not a valid SSH public key: %v", err)
		}
		r, err := agessh.ParseRecipient(s)
		if err != nil {
			return Recipient{}, err
		}
		text := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
		return Recipient{Text: text, Fingerprint: pk.Type() + " " + ssh.FingerprintSHA256(pk), r: r}, nil
	}
	return Recipient{}, errors.New("is not a recipient: give an age X25519 public key (age1…) or an ssh-ed25519 or ssh-rsa public key")
}

// LineError is a bad line of a recipients list or file.
type LineError struct {
	Line int // 1-based; for a comma-separated list, the item's position
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ParseRecipientsFile reads recipients one per line, as `age -R` does: blank lines and lines
// starting with '#' are skipped. A bad line fails with a *LineError.
func ParseRecipientsFile(r io.Reader) ([]Recipient, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []Recipient
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rc, err := ParseRecipient(line)
		if err != nil {
			return nil, &LineError{Line: n, Err: err}
		}
		out = append(out, rc)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("agefile: read recipients: %w", err)
	}
	return out, nil
}

// Dedupe drops recipients listed twice, keeping the first.
func Dedupe(rs []Recipient) []Recipient {
	seen := map[string]bool{}
	out := rs[:0:0]
	for _, r := range rs {
		if !seen[r.Fingerprint] {
			seen[r.Fingerprint] = true
			out = append(out, r)
		}
	}
	return out
}

// Fingerprints lists the recipients' fingerprints, in order.
func Fingerprints(rs []Recipient) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Fingerprint
	}
	return out
}

// Encrypt returns a writer that encrypts to rs into dst. Close writes the last chunk; until it
// returns nil the file is incomplete.
func Encrypt(dst io.Writer, rs []Recipient) (io.WriteCloser, error) {
	if len(rs) == 0 {
		return nil, errors.New("agefile: encrypt: no recipients")
	}
	ars := make([]age.Recipient, len(rs))
	for i, r := range rs {
		if r.r == nil {
			return nil, fmt.Errorf("agefile: encrypt: recipient %d was not parsed", i+1)
		}
		ars[i] = r.r
	}
	w, err := age.Encrypt(dst, ars...)
	if err != nil {
		return nil, fmt.Errorf("agefile: encrypt: %w", err)
	}
	return w, nil
}

// Identities are the private keys that decrypt files.
type Identities struct {
	ids []age.Identity
	// Kinds names each identity's type ("X25519", "ssh-ed25519", "ssh-rsa"), for logs.
	Kinds []string
}

// ErrEncryptedSSHKey: an SSH private key protected by a passphrase, which a worker cannot type.
var ErrEncryptedSSHKey = errors.New("is a passphrase-protected SSH private key; a worker cannot ask for the passphrase: " +
	"give an unprotected copy (ssh-keygen -p -N '' -f COPY) or an age identity file (age-keygen)")

// ParseIdentities reads an age identities file (AGE-SECRET-KEY-1… lines, '#' comments) or an
// unencrypted SSH private key (ssh-ed25519 or ssh-rsa, PEM or OpenSSH form). Its errors name
// the bad line but never quote it.
func ParseIdentities(data []byte) (*Identities, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		id, err := agessh.ParseIdentity(trimmed)
		if _, ok := errors.AsType[*ssh.PassphraseMissingError](err); ok {
			return nil, ErrEncryptedSSHKey
		}
		if err != nil {
			return nil, fmt.Errorf("is not a usable SSH private key (ssh-ed25519 or ssh-rsa): %v", err)
		}
		kind := "ssh-rsa"
		if _, ok := id.(*agessh.Ed25519Identity); ok {
			kind = "ssh-ed25519"
		}
		return &Identities{ids: []age.Identity{id}, Kinds: []string{kind}}, nil
	}
	out := &Identities{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "AGE-SECRET-KEY-1") {
			return nil, &LineError{Line: n, Err: errors.New("is not an age identity (AGE-SECRET-KEY-1…); a file holds age identities or one SSH private key")}
		}
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, &LineError{Line: n, Err: errors.New("is not a valid age identity")}
		}
		out.ids = append(out.ids, id)
		out.Kinds = append(out.Kinds, "X25519")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("agefile: read identities: %w", err)
	}
	if len(out.ids) == 0 {
		return nil, errors.New("holds no identity: give age identities (age-keygen) or an SSH private key")
	}
	return out, nil
}

// IsEncrypted reports whether head, the first bytes of a file, starts an age file (binary, or
// ASCII-armored as `age -a` writes). HeaderLen bytes are enough.
func IsEncrypted(head []byte) bool {
	return bytes.HasPrefix(head, []byte(header)) || bytes.HasPrefix(head, []byte(armor.Header))
}

// HeaderLen is how many bytes IsEncrypted needs.
const HeaderLen = len(armor.Header)

// ErrNoIdentityMatch matches (errors.Is) a file none of the identities decrypts.
var ErrNoIdentityMatch = errors.New("none of the identities can decrypt this file: it was encrypted to other recipients")

// ErrDamaged matches (errors.Is) a file whose age header or data does not authenticate.
var ErrDamaged = errors.New("the encrypted file is damaged or truncated")

// Decrypt returns the plaintext of the age file read from src (binary or armored). Errors of
// the header, and of the data as it is read, wrap ErrNoIdentityMatch or ErrDamaged; src's own
// read errors are returned as they are, so a caller can tell storage from crypto failures by
// marking them.
func (ids *Identities) Decrypt(src io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	head, _ := br.Peek(len(armor.Header))
	var in io.Reader = br
	if bytes.HasPrefix(head, []byte(armor.Header)) {
		in = armor.NewReader(br)
	}
	r, err := age.Decrypt(in, ids.ids...)
	if _, ok := errors.AsType[*age.NoIdentityMatchError](err); ok {
		return nil, ErrNoIdentityMatch
	}
	if err != nil {
		return nil, damaged(err)
	}
	return &plainReader{r: r}, nil
}

// plainReader marks the decryptor's errors as damage, leaving the source's through.
type plainReader struct{ r io.Reader }

func (p *plainReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF {
		var se *SourceError
		if !errors.As(err, &se) {
			err = damaged(err)
		}
	}
	return n, err
}

func damaged(err error) error {
	var se *SourceError
	if errors.As(err, &se) {
		return se
	}
	return fmt.Errorf("%w: %v", ErrDamaged, err)
}

// SourceError marks an error of the reader a file is decrypted from (storage, network), so that
// it is not taken for damage.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// MarkSource wraps r so its errors (other than io.EOF) are *SourceError.
func MarkSource(r io.Reader) io.Reader { return sourceReader{r} }

type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		err = &SourceError{err}
	}
	return n, err
}
