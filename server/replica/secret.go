package replica

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// minURLSecret is the shortest image-link secret accepted: 32 characters
// (e.g. openssl rand -hex 16), beyond a brute-force search of the HMAC key.
const minURLSecret = 32

// loadURLSecret returns the secret signing image links: the configured one,
// or the one kept in DATA_DIR/url-secret (0600), made on first start. A
// per-process random secret would break every link at a restart and on
// every replica but the one that made it.
func loadURLSecret(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		if len(configured) < minURLSecret {
			return nil, fmt.Errorf("--url-secret is %d characters; want at least %d (e.g. openssl rand -hex 32)", len(configured), minURLSecret)
		}
		return []byte(configured), nil
	}
	s, err := KeptSecret(filepath.Join(dataDir, "url-secret"), "")
	if err != nil {
		return nil, fmt.Errorf("url secret: %w", err)
	}
	return []byte(s), nil
}

// KeptSecret reads a secret kept in path, or makes one (RandomToken) and
// keeps it there (0600).
func KeptSecret(path, prefix string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > len(prefix)+8 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	s := RandomToken(prefix)
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

// RandomToken is prefix followed by 128 random bits in hex.
func RandomToken(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
