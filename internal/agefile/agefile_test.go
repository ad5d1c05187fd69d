package agefile_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/hubexport/hubexport/internal/agefile"
)

type sshKey struct {
	pub     string // authorized_keys line
	private []byte // OpenSSH PEM
	fp      string
}

func newEd25519(t *testing.T, passphrase string) sshKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return marshal(t, pub, priv, passphrase)
}

func marshal(t *testing.T, pub, priv any, passphrase string) sshKey {
	t.Helper()
	spk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{pub: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " ops@example", private: pem.EncodeToMemory(block),
		fp: spk.Type() + " " + ssh.FingerprintSHA256(spk)}
}

func TestParseRecipient(t *testing.T) {
	t.Parallel()
	id, _ := age.GenerateX25519Identity()
	ed := newEd25519(t, "")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs := marshal(t, &rsaKey.PublicKey, rsaKey, "")
	for _, tc := range []struct {
		in, fp, err string
	}{
		{in: id.Recipient().String(), fp: id.Recipient().String()},
		{in: "  " + id.Recipient().String() + " ", fp: id.Recipient().String()},
		{in: ed.pub, fp: ed.fp},
		{in: rs.pub, fp: rs.fp},
		{in: "", err: "is empty"},
		{in: id.String(), err: "is a private key"},
		{in: "age1qqqq", err: "is not an age X25519 recipient"},
		{in: "ssh-ed25519 AAAAnotbase64!", err: "is not a valid SSH public key"},
		{in: "ecdsa-sha2-nistp256 AAAA", err: "is not a recipient"},
		{in: "hello", err: "is not a recipient"},
	} {
		r, err := agefile.ParseRecipient(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseRecipient(%.30q) = %v, want error containing %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("ParseRecipient(%.30q): %v", tc.in, err)
		case tc.err == "" && r.Fingerprint != tc.fp:
			t.Errorf("ParseRecipient(%.30q) fingerprint %q, want %q", tc.in, r.Fingerprint, tc.fp)
		}
		if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY") {
			t.Errorf("error quotes a private key: %v", err)
		}
	}
}

func TestParseRecipientsFile(t *testing.T) {
	t.Parallel()
	a, _ := age.GenerateX25519Identity()
	ed := newEd25519(t, "")
	file := "# backup keys\n\n" + a.Recipient().String() + "\n  # ops laptop\n" + ed.pub + "\n"
	rs, err := agefile.ParseRecipientsFile(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if got := agefile.Fingerprints(rs); len(got) != 2 || got[0] != a.Recipient().String() || got[1] != ed.fp {
		t.Fatalf("fingerprints %q", got)
	}
	_, err = agefile.ParseRecipientsFile(strings.NewReader(file + "\nnot-a-key\n"))
	var le *agefile.LineError
	if !errors.As(err, &le) || le.Line != 7 {
		t.Fatalf("bad line: %v, want a LineError at line 7", err)
	}
}

func TestRoundTripAndIdentities(t *testing.T) {
	t.Parallel()
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateX25519Identity()
	ed := newEd25519(t, "")
	ra, _ := agefile.ParseRecipient(a.Recipient().String())
	red, _ := agefile.ParseRecipient(ed.pub)
	plain := bytes.Repeat([]byte("PGDMP hub rows "), 20000)
	var ct bytes.Buffer
	w, err := agefile.Encrypt(&ct, []agefile.Recipient{ra, red})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !agefile.IsEncrypted(ct.Bytes()[:agefile.HeaderLen]) || agefile.IsEncrypted(plain[:agefile.HeaderLen]) {
		t.Fatal("IsEncrypted does not tell the files apart")
	}

	for name, data := range map[string][]byte{
		"age identities file": []byte("# created: now\n" + b.String() + "\n" + a.String() + "\n"),
		"ssh private key":     ed.private,
	} {
		ids, err := agefile.ParseIdentities(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, err := ids.Decrypt(bytes.NewReader(ct.Bytes()))
		if err != nil {
			t.Fatalf("%s: decrypt: %v", name, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: plaintext differs (%d bytes, %v)", name, len(got), err)
		}
	}

	wrong, _ := agefile.ParseIdentities([]byte(b.String()))
	if _, err := wrong.Decrypt(bytes.NewReader(ct.Bytes())); !errors.Is(err, agefile.ErrNoIdentityMatch) {
		t.Fatalf("wrong identity: %v, want ErrNoIdentityMatch", err)
	}
	right, _ := agefile.ParseIdentities([]byte(a.String()))
	bad := bytes.Clone(ct.Bytes())
	bad[len(bad)-100] ^= 1
	r, err := right.Decrypt(bytes.NewReader(bad))
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if !errors.Is(err, agefile.ErrDamaged) {
		t.Fatalf("damaged file: %v, want ErrDamaged", err)
	}
	storageErr := errors.New("connection reset")
	r, err = right.Decrypt(agefile.MarkSource(io.MultiReader(bytes.NewReader(ct.Bytes()[:100000]), errReader{storageErr})))
	if err == nil {
		_, err = io.ReadAll(r)
	}
	var se *agefile.SourceError
	if !errors.As(err, &se) || !errors.Is(err, storageErr) || errors.Is(err, agefile.ErrDamaged) {
		t.Fatalf("source failure: %v, want the source's error, not damage", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestParseIdentitiesErrors(t *testing.T) {
	t.Parallel()
	a, _ := age.GenerateX25519Identity()
	locked := newEd25519(t, "hunter2")
	for name, tc := range map[string]struct {
		data, want string
	}{
		"empty":          {"\n# nothing\n", "holds no identity"},
		"recipient":      {"# keys\n" + a.Recipient().String() + "\n", "line 2 is not an age identity"},
		"broken key":     {"AGE-SECRET-KEY-1QQQQ\n", "line 1 is not a valid age identity"},
		"passphrase key": {string(locked.private), "passphrase-protected"},
	} {
		_, err := agefile.ParseIdentities([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY-1QQQQ") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
}
