package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role is what a console user may do. Reviewers score outputs; engineers
// also see dashboards, experiments and policies; admins also manage users.
type Role string

const (
	RoleReviewer Role = "reviewer"
	RoleEngineer Role = "engineer"
	RoleAdmin    Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleReviewer || r == RoleEngineer || r == RoleAdmin }

// User is a console account. Hash is a bcrypt hash; the password itself is
// never stored.
type User struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
}

// User store errors.
var (
	ErrUserNotFound = errors.New("user not found")
	ErrUserExists   = errors.New("user already exists")
)

// UserStore keeps accounts. Lookup returns ErrUserNotFound; Create returns
// ErrUserExists for a taken name.
type UserStore interface {
	Lookup(ctx context.Context, name string) (User, error)
	Create(ctx context.Context, u User) error
	List(ctx context.Context) ([]User, error)
}

var userName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

// passwordCost is the bcrypt cost of new password hashes and of the
// comparison a login for an unknown name spends. The package's tests lower
// it (export_test.go): under -race one comparison at the default cost takes
// about a second, and the login tests make hundreds.
var passwordCost = bcrypt.DefaultCost

// NewUser validates and hashes a new account.
func NewUser(name string, role Role, password string, now time.Time) (User, error) {
	if !userName.MatchString(name) {
		return User{}, &FieldError{Code: "bad_name", Field: "name", Message: "2-64 characters: a-z 0-9 . _ -, starting with a letter or digit"}
	}
	if !role.Valid() {
		return User{}, &FieldError{Code: "bad_role", Field: "role", Message: "one of reviewer, engineer, admin"}
	}
	if len(password) < 8 || len(password) > 72 {
		return User{}, &FieldError{Code: "bad_password", Field: "password", Message: "8-72 characters"}
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), passwordCost)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	return User{Name: name, Role: role, Hash: h, Created: now.UTC()}, nil
}

// CheckPassword reports whether password is the user's.
func (u User) CheckPassword(password string) bool {
	return bcrypt.CompareHashAndPassword(u.Hash, []byte(password)) == nil
}

// FileUsers is a UserStore in one JSON file (mode 0600), re-read on every
// lookup so `routelab users create` takes effect in a running console.
type FileUsers struct {
	path string
	mu   sync.Mutex
}

var _ UserStore = (*FileUsers)(nil)

// NewFileUsers returns the store at path (created on first write).
func NewFileUsers(path string) *FileUsers { return &FileUsers{path: path} }

func (f *FileUsers) load() (map[string]User, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]User{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	var doc struct {
		Users []User `json:"users"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", f.path, err)
	}
	m := make(map[string]User, len(doc.Users))
	for _, u := range doc.Users {
		m[u.Name] = u
	}
	return m, nil
}

// Lookup implements UserStore.
func (f *FileUsers) Lookup(_ context.Context, name string) (User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.load()
	if err != nil {
		return User{}, err
	}
	u, ok := m[name]
	if !ok {
		return User{}, ErrUserNotFound
	}
	return u, nil
}

// List implements UserStore.
func (f *FileUsers) List(_ context.Context) ([]User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.load()
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(m))
	for _, u := range m {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Create implements UserStore.
func (f *FileUsers) Create(_ context.Context, u User) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.load()
	if err != nil {
		return err
	}
	if _, ok := m[u.Name]; ok {
		return ErrUserExists
	}
	m[u.Name] = u
	list := make([]User, 0, len(m))
	for _, x := range m {
		list = append(list, x)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	b, err := json.MarshalIndent(map[string]any{"users": list}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("write users: %w", err)
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write users: %w", err)
	}
	return os.Rename(tmp, f.path)
}

// EnsureUser creates the user when the name is free and reports whether it
// did; `routelab dev` uses it to seed an admin.
func EnsureUser(ctx context.Context, s UserStore, name string, role Role, password string) (bool, error) {
	if _, err := s.Lookup(ctx, name); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrUserNotFound) {
		return false, err
	}
	u, err := NewUser(name, role, password, time.Now())
	if err != nil {
		return false, err
	}
	if err := s.Create(ctx, u); err != nil && !errors.Is(err, ErrUserExists) {
		return false, err
	}
	return true, nil
}
