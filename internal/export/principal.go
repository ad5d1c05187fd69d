package export

import (
	"context"
	"strconv"
)

// AdminTokenUserID is the user id CCH gives the virtual admin behind ADMIN_TOKEN.
const AdminTokenUserID = -1

// Principal is who is calling: the admin token or a CCH user's API key.
type Principal struct {
	UserID   int64
	KeyID    int64
	UserName string
	KeyName  string
	Admin    bool
}

// AdminToken is the principal of a caller presenting ADMIN_TOKEN.
func AdminToken() Principal {
	return Principal{UserID: AdminTokenUserID, KeyID: -1, UserName: "Admin Token", KeyName: "ADMIN_TOKEN", Admin: true}
}

// String names the principal for logs and the audit trail (never the secret).
func (p Principal) String() string {
	if p.UserID == AdminTokenUserID {
		return "admin_token"
	}
	return "user:" + strconv.FormatInt(p.UserID, 10) + "/key:" + strconv.FormatInt(p.KeyID, 10)
}

// CanSee reports whether p may see job j. Admins see everything; users see
// the jobs they own.
func (p Principal) CanSee(j *Job) bool {
	return p.Admin || j.UserID == p.UserID
}

// Authenticator turns a presented token into a principal. It returns an
// error of kind KindUnauthenticated for a missing, unknown, disabled or
// expired credential.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}
