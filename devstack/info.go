package devstack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InfoFile is the file under the data dir where a running stack records
// itself (Info) and CLI commands find it.
const InfoFile = "dev.json"

// Info is DATA_DIR/dev.json: the bound addresses and seeded credentials
// of a running `routelab dev`. Components that are not running are omitted.
type Info struct {
	API string `json:"api,omitempty"`
	// APIReplicas are every serve replica's image API, API first.
	APIReplicas    []string `json:"api_replicas,omitempty"`
	Admin          string   `json:"admin,omitempty"` // serve's admin API, a listener apart from api
	Console        string   `json:"console,omitempty"`
	Kafka          string   `json:"kafka"`
	Redis          string   `json:"redis,omitempty"` // the state store the replicas share, redis://
	ClickHouse     string   `json:"clickhouse"`
	ClickHouseHTTP string   `json:"clickhouse_http"`
	Database       string   `json:"database"`
	APIKey         string   `json:"api_key,omitempty"`
	AdminToken     string   `json:"admin_token,omitempty"`
	// The console's seeded admin account.
	ConsoleUser     string `json:"console_user,omitempty"`
	ConsolePassword string `json:"console_password,omitempty"`
}

// ReadInfo reads DATA_DIR/dev.json, where CLI commands find a running
// `routelab dev` when no flag or environment variable names a service.
func ReadInfo(dir string) (Info, error) {
	var d Info
	path := filepath.Join(dir, InfoFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// ClickHouseDSN is the DSN of dev's ClickHouse and database ("" when dev.json
// names none).
func (d Info) ClickHouseDSN() string {
	if d.ClickHouse == "" {
		return ""
	}
	dsn := "clickhouse://" + strings.TrimPrefix(d.ClickHouse, "clickhouse://")
	if d.Database != "" && !strings.Contains(strings.TrimPrefix(dsn, "clickhouse://"), "/") {
		dsn += "/" + d.Database
	}
	return dsn
}

// WriteInfo writes info to path atomically: readers never see a
// half-written file.
func WriteInfo(path string, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
