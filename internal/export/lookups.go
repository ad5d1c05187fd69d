package export

import (
	"context"
	"time"
)

// Me is the API's answer to "who am I": the caller as the API sees them,
// and the export types they may ask for.
type Me struct {
	UserID  int64  `json:"user_id"`
	Name    string `json:"name"`
	Admin   bool   `json:"admin"`
	KeyID   int64  `json:"key_id"`
	KeyName string `json:"key_name"`
	// ExportTypes lists the types this build runs that p may request.
	ExportTypes []string `json:"export_types"`
}

// Me describes p. It reads nothing: the principal already holds it.
func (s *Service) Me(p Principal) Me {
	types := []string{}
	for _, t := range s.Registry.Types() {
		if spec, _ := s.Registry.Spec(Type(t)); p.Admin || !spec.AdminOnly {
			types = append(types, t)
		}
	}
	return Me{UserID: p.UserID, Name: p.UserName, Admin: p.Admin, KeyID: p.KeyID, KeyName: p.KeyName, ExportTypes: types}
}

// HubUser is a CCH user as the page's selectors show it.
type HubUser struct {
	ID      int64      `json:"id"`
	Name    string     `json:"name"`
	Admin   bool       `json:"admin"`
	Enabled bool       `json:"enabled"`
	Expires *time.Time `json:"expires_at,omitempty"`
	// Deleted users stay listed: their requests are still in the logs.
	Deleted bool `json:"deleted"`
}

// HubKey is a CCH API key by id and name. The key string is a credential
// and never leaves the hub package.
type HubKey struct {
	ID      int64      `json:"id"`
	UserID  int64      `json:"user_id"`
	Name    string     `json:"name"`
	Enabled bool       `json:"enabled"`
	Expires *time.Time `json:"expires_at,omitempty"`
	Deleted bool       `json:"deleted"`
}

// HubProvider is a CCH provider (an upstream), without its credentials.
type HubProvider struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"provider_type"`
	Enabled bool   `json:"enabled"`
	Deleted bool   `json:"deleted"`
}

// HubEndpoint is a CCH provider endpoint, the subject of probe logs.
type HubEndpoint struct {
	ID      int64  `json:"id"`
	Vendor  string `json:"vendor"`
	Type    string `json:"provider_type"`
	URL     string `json:"url"`
	Label   string `json:"label"`
	Enabled bool   `json:"enabled"`
	Deleted bool   `json:"deleted"`
}

// Directory reads the hub's users, keys, providers and endpoints, soft-deleted
// ones included, ordered by id. A nil id means all.
type Directory interface {
	Users(ctx context.Context, id *int64) ([]HubUser, error)
	Keys(ctx context.Context, userID *int64) ([]HubKey, error)
	Providers(ctx context.Context) ([]HubProvider, error)
	Endpoints(ctx context.Context) ([]HubEndpoint, error)
}

// Lookups answers the page's selectors: an admin sees the whole hub, a user
// only themselves and their own keys.
type Lookups struct {
	Dir Directory
}

// Users lists the users p may filter by.
func (l *Lookups) Users(ctx context.Context, p Principal) ([]HubUser, error) {
	var only *int64
	if !p.Admin {
		only = &p.UserID
	}
	return orEmpty(l.Dir.Users(ctx, only))
}

// Keys lists the keys of userID (nil: every user's). A user's userID is
// forced to their own, as for usage exports.
func (l *Lookups) Keys(ctx context.Context, p Principal, userID *int64) ([]HubKey, error) {
	if !p.Admin {
		userID = &p.UserID
	}
	return orEmpty(l.Dir.Keys(ctx, userID))
}

// Providers lists the hub's providers, for administrators.
func (l *Lookups) Providers(ctx context.Context, p Principal) ([]HubProvider, error) {
	if !p.Admin {
		return nil, Errorf(KindForbidden, "admin_only", "the provider list is for administrators only")
	}
	return orEmpty(l.Dir.Providers(ctx))
}

// Endpoints lists the hub's provider endpoints, for administrators.
func (l *Lookups) Endpoints(ctx context.Context, p Principal) ([]HubEndpoint, error) {
	if !p.Admin {
		return nil, Errorf(KindForbidden, "admin_only", "the endpoint list is for administrators only")
	}
	return orEmpty(l.Dir.Endpoints(ctx))
}

// orEmpty turns a nil list into an empty one, so JSON says [] not null.
func orEmpty[T any](list []T, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []T{}
	}
	return list, nil
}
