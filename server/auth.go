package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Key is one tenant API key as stored: only the SHA-256 of the secret is
// kept. Secrets are 160 random bits, so a fast hash is enough; a slow
// password hash would only cost every request.
type Key struct {
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Name    string `json:"name,omitempty"`
	Hash    string `json:"hash"`
	Created int64  `json:"created"` // Unix seconds
	Revoked bool   `json:"revoked"`
}

// NewSecret makes an API key secret, "rl_" followed by 32 hex digits.
func NewSecret() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return "rl_" + hex.EncodeToString(b[:])
}

// HashSecret is how a secret is stored and looked up.
func HashSecret(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

const localKey = "routelab.key"

func keyOf(c *fiber.Ctx) Key {
	k, _ := c.Locals(localKey).(Key)
	return k
}

var errUnauthorized = &Error{Status: fiber.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing or invalid API key; send Authorization: Bearer KEY"}

// auth admits requests that carry a live API key (Authorization: Bearer, or
// x-api-key).
func (h *handlers) auth(c *fiber.Ctx) error {
	k, ok := h.liveKey(c.Get)
	if !ok {
		return errUnauthorized
	}
	c.Locals(localKey, k)
	return c.Next()
}

// liveKey finds the live key a request's headers carry.
func (h *handlers) liveKey(header func(name string, def ...string) string) (Key, bool) {
	secret := bearer(header(fiber.HeaderAuthorization))
	if secret == "" {
		secret = header("x-api-key")
	}
	if secret == "" {
		return Key{}, false
	}
	k, ok := h.deps.Keys.Lookup(HashSecret(secret))
	return k, ok && !k.Revoked
}

// peek reads a header of a request whose body has not been read yet.
func peek(hd *fasthttp.RequestHeader) func(string, ...string) string {
	return func(name string, _ ...string) string { return string(hd.Peek(name)) }
}

// hasAPIKey says, from the headers alone, whether a request may have its
// body read on the public listener.
func (h *handlers) hasAPIKey(hd *fasthttp.RequestHeader) bool {
	_, ok := h.liveKey(peek(hd))
	return ok
}

// keyRefusal turns the body-too-large refusal of a request without a live
// key (newApp gives such a request a one-byte body limit) into the 401 it
// is; nil when the request has a key, so a real 413 stays one.
func (h *handlers) keyRefusal(c *fiber.Ctx) error {
	if _, ok := h.liveKey(c.Get); ok {
		return nil
	}
	return errUnauthorized
}

const localAdmin = "routelab.admin"

// adminCredential names the admin token in audit records: the credential a
// change was made with.
const adminCredential = "admin"

var errAdminOnly = &Error{Status: fiber.StatusForbidden, Code: CodeForbidden, Message: "admin token required"}

// adminAuth admits requests that carry the admin token; anything else is
// 403, including a valid tenant API key.
func (h *handlers) adminAuth(c *fiber.Ctx) error {
	if !h.isAdmin(c.Get) {
		return errAdminOnly
	}
	c.Locals(localAdmin, adminCredential)
	return c.Next()
}

func (h *handlers) isAdmin(header func(name string, def ...string) string) bool {
	tok := bearer(header(fiber.HeaderAuthorization))
	if tok == "" {
		tok = header("x-admin-token")
	}
	return h.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(h.cfg.AdminToken)) == 1
}

// hasAdminToken and adminRefusal are hasAPIKey and keyRefusal of the admin
// listener.
func (h *handlers) hasAdminToken(hd *fasthttp.RequestHeader) bool { return h.isAdmin(peek(hd)) }

func (h *handlers) adminRefusal(c *fiber.Ctx) error {
	if h.isAdmin(c.Get) {
		return nil
	}
	return errAdminOnly
}

// actor is who the audit log says made an admin change: the credential the
// request authenticated with. A caller holding that credential may say on
// whose behalf it acts (X-Routelab-Actor: the console names its logged-in
// user, the CLI $USER); that is recorded as a claim after the credential,
// "console:eng via admin", never instead of it. A claim is a short token of
// [A-Za-z0-9._:@-] so it cannot forge the " via " part or a log line.
func actor(c *fiber.Ctx) string {
	cred, _ := c.Locals(localAdmin).(string)
	if cred == "" {
		cred = "unauthenticated" // not reached: admin routes run behind adminAuth
	}
	claim := c.Get("x-routelab-actor")
	if claim == "" || len(claim) > 64 || strings.Trim(claim, actorChars) != "" {
		return cred
	}
	return claim + " via " + cred
}

const actorChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-"

func bearer(v string) string {
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// MemKeys is a KeyStore in memory. Persist, when set, is called with every
// changed key before the change is visible (a control-plane topic, see
// cmd/routelab); Apply installs keys read back from there.
type MemKeys struct {
	Persist func(ctx context.Context, k Key) error
	Now     func() time.Time

	mu     sync.RWMutex
	byHash map[string]Key
	byID   map[string]Key
}

var _ KeyStore = (*MemKeys)(nil)

// NewMemKeys returns an empty store.
func NewMemKeys() *MemKeys {
	return &MemKeys{byHash: map[string]Key{}, byID: map[string]Key{}, Now: time.Now}
}

// Lookup finds a key by the hash of its secret.
func (m *MemKeys) Lookup(hash string) (Key, bool) {
	m.mu.RLock()
	k, ok := m.byHash[hash]
	m.mu.RUnlock()
	return k, ok
}

// Apply installs or replaces a key (revocations included).
func (m *MemKeys) Apply(k Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byID[k.ID]; ok {
		delete(m.byHash, old.Hash)
	}
	m.byID[k.ID] = k
	m.byHash[k.Hash] = k
}

// Remove forgets the key with id (a tombstone on the keys topic): its
// secret answers 401 from then on, as a revoked one does.
func (m *MemKeys) Remove(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.byID[id]; ok {
		delete(m.byHash, old.Hash)
		delete(m.byID, id)
	}
}

// Create makes a key for tenant and returns it with its secret.
func (m *MemKeys) Create(ctx context.Context, tenant, name string) (Key, string, error) {
	secret := NewSecret()
	k := Key{ID: newID("key_"), Tenant: tenant, Name: name, Hash: HashSecret(secret), Created: m.Now().Unix()}
	return k, secret, m.put(ctx, k)
}

// Insert stores a key whose secret the caller chose (dev seeding).
func (m *MemKeys) Insert(ctx context.Context, tenant, name, secret string) (Key, error) {
	k := Key{ID: newID("key_"), Tenant: tenant, Name: name, Hash: HashSecret(secret), Created: m.Now().Unix()}
	return k, m.put(ctx, k)
}

func (m *MemKeys) put(ctx context.Context, k Key) error {
	if m.Persist != nil {
		if err := m.Persist(ctx, k); err != nil {
			return err
		}
	}
	m.Apply(k)
	return nil
}

// List returns every key, revoked ones included, oldest first.
func (m *MemKeys) List(context.Context) ([]Key, error) {
	m.mu.RLock()
	out := make([]Key, 0, len(m.byID))
	for _, k := range m.byID {
		out = append(out, k)
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Key) int {
		if a.Created != b.Created {
			return int(a.Created - b.Created)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Revoke marks a key revoked; it answers 401 from then on.
func (m *MemKeys) Revoke(ctx context.Context, id string) error {
	m.mu.RLock()
	k, ok := m.byID[id]
	m.mu.RUnlock()
	if !ok {
		return ErrNotFound
	}
	k.Revoked = true
	return m.put(ctx, k)
}
