package datasets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/routelab/routelab/router"
)

// LoadPolicy reads and validates a policy file.
func LoadPolicy(path string) (*router.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := router.ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// WritePolicy writes p's document to path (0644), making the directories
// it needs; LoadPolicy reads it back.
func WritePolicy(path string, p *router.Policy) error {
	b, err := p.JSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// PolicyDoc returns the document of a policy file, or of a shipped policy
// by name when no file has that path.
func PolicyDoc(nameOrPath string) ([]byte, error) {
	if b, err := os.ReadFile(nameOrPath); err == nil {
		return b, nil
	}
	b, err := PolicyFile(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("policy %q is neither a file nor a shipped policy", nameOrPath)
	}
	return b, nil
}

// LoadWorkload reads a JSONL workload file (routelab workload generate).
func LoadWorkload(path string) ([]WorkItem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	items, err := ReadWorkload(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return items, nil
}

// LoadCatalog reads a catalog file; "" is the shipped catalog, and a
// shipped catalog's name ("sim", "vendors": NamedCatalog) with no file of
// that name beside it is that catalog.
func LoadCatalog(path string) (router.Catalog, error) {
	if path == "" {
		return Catalog()
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(path, `/\.`) {
		return NamedCatalog(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return router.Catalog{}, err
	}
	return ParseCatalog(b)
}

// LoadOrGenerate reads the workload file at path, or without one
// generates the built-in mix from seed: n items (at most 20,000; n <= 0
// means 20,000), cycled by a caller that needs more.
func LoadOrGenerate(path string, seed uint64, n int) ([]WorkItem, error) {
	if path == "" {
		if n <= 0 || n > 20000 {
			n = 20000
		}
		return Generate(seed, n)
	}
	items, err := LoadWorkload(path)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: empty workload", path)
	}
	return items, nil
}
