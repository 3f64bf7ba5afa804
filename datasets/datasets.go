// Package datasets holds routelab's data: the default model catalog, the
// shipped routing policies, the public prompt set and the workload
// generator, with their loaders. Everything is embedded in the binary, so
// the lab runs from a fresh checkout with no downloads.
package datasets

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/routelab/routelab/router"
)

//go:embed catalog.json catalogs/*.json policies/*.json prompts/parti/PartiPrompts.tsv
var files embed.FS

// Catalog returns the default model catalog: six simulated models shaped
// after public price lists and write-ups (each entry's source field cites
// them):
//
//   - sim-lite: FLUX.1 [schnell]-like, ~$0.003/MP, ~1.4 s.
//   - sim-fast: Imagen 4 Fast-like, $0.02/image, ~2.8 s (the design notes'
//     fast tier against a ~12 s heavy model).
//   - sim-premium: gpt-image-1-like, $0.042 medium / $0.167 high, ~12 s.
//   - sim-editor: FLUX.1 Kontext [pro]/[max]-like, $0.04/$0.08, up to 4 refs.
//   - sim-typo: Ideogram 3.0-like, $0.03/$0.06/$0.09; ~95% legible on short
//     phrases where generalists fail ~80%.
//   - sim-hero: Imagen 4 Ultra-like, $0.06/image, 2K output, no editing.
func Catalog() (router.Catalog, error) {
	b, err := files.ReadFile("catalog.json")
	if err != nil {
		return router.Catalog{}, err
	}
	return ParseCatalog(b)
}

// NamedCatalog returns a shipped catalog by name: "sim" (or "") is the
// default Catalog; "vendors" (catalogs/vendors.json) holds real vendor
// models with their native sizes and prices, each with its source.
func NamedCatalog(name string) (router.Catalog, error) {
	if name == "" || name == "sim" {
		return Catalog()
	}
	b, err := files.ReadFile("catalogs/" + name + ".json")
	if err != nil {
		return router.Catalog{}, fmt.Errorf("no shipped catalog %q", name)
	}
	c, err := ParseCatalog(b)
	if err != nil {
		return c, fmt.Errorf("catalog %s: %w", name, err)
	}
	return c, nil
}

// CatalogPolicy is the shipped policy that routes between a shipped
// catalog's models ("vendors" for the vendors catalog), or "" for the
// simulated catalog and for catalog files, whose policy the caller names.
// A policy routing to models its catalog lacks cannot serve, so serve and
// dev start the catalog's own policy unless --policy says otherwise.
func CatalogPolicy(catalog string) string {
	if catalog == "vendors" {
		return "vendors"
	}
	return ""
}

// ParseCatalog decodes and validates a catalog file.
func ParseCatalog(b []byte) (router.Catalog, error) {
	var c router.Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decode catalog: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// MustCatalog is Catalog for tests and fixed data; it panics on the
// embedded file being broken, which a test in this package rules out.
func MustCatalog() router.Catalog {
	c, err := Catalog()
	if err != nil {
		panic(err)
	}
	return c
}

// Policy returns a shipped policy by name: "default" (trained in the
// simulated world by `make default-policy`, epsilon 0.05: what `routelab
// dev` makes live), "explore" (rules plus 80% uniform exploration, for
// collecting training data on purpose), "rules" (the
// hand-written rules alone) or "canary-flaky" (the rules plus the pin-only
// sim-flaky model, for the canary arm of datasets/experiments/canary.json
// that pins it).
func Policy(name string) (*router.Policy, error) {
	b, err := files.ReadFile("policies/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("no shipped policy %q", name)
	}
	return router.ParsePolicy(b)
}

// PolicyNames lists the shipped policies, sorted.
func PolicyNames() []string {
	ents, _ := files.ReadDir("policies") // embedded: cannot fail
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			out = append(out, n)
		}
	}
	return out
}

// PolicyFile returns the raw bytes of a shipped policy.
func PolicyFile(name string) ([]byte, error) {
	return files.ReadFile("policies/" + name + ".json")
}
