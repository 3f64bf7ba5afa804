package console

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/routelab/routelab/blob"
	"github.com/routelab/routelab/blob/s3blob"
	"github.com/routelab/routelab/events/kafka"
	"github.com/routelab/routelab/ingest"
)

// ProcessConfig is where a console process finds its collaborators;
// `routelab console` fills it from flags and `routelab dev` from its own
// stack.
type ProcessConfig struct {
	DataDir       string
	ClickHouseDSN string // "none": no data pages
	Brokers       []string
	BlobDir       string         // "" = DATA_DIR/blobs
	BlobS3        *s3blob.Config // the bucket serve keeps blobs in, instead of BlobDir
	TLSCert       string
	TLSKey        string
	AdminURL      string
	AdminToken    string
	Refresh       time.Duration // review queues' refresh; 0 = 10s
	// TrustedProxies may name the client in X-Forwarded-For.
	TrustedProxies []string
	Logger         *slog.Logger
}

// Process is a console with the collaborators it opened: the blob store,
// ClickHouse, and with brokers the accounts and policies topics and the
// producer of review events (else accounts in DATA_DIR/console/users.json).
type Process struct {
	*Console
	cfg     ProcessConfig
	closers []func()
}

// UsersFile is where the console keeps accounts under a data dir when no
// Kafka is configured.
func UsersFile(dataDir string) string { return filepath.Join(dataDir, "console", "users.json") }

// OpenProcess builds the console and its collaborators, leaves first.
func OpenProcess(ctx context.Context, o ProcessConfig) (_ *Process, err error) {
	p := &Process{cfg: o}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if o.BlobDir == "" {
		o.BlobDir = filepath.Join(o.DataDir, "blobs")
	}
	var blobs Blobs
	if o.BlobS3 != nil {
		if blobs, err = s3blob.Open(ctx, *o.BlobS3, nil); err != nil {
			return nil, fmt.Errorf("--blob-s3: %w", err)
		}
	} else if blobs, err = blob.Open(o.BlobDir); err != nil {
		return nil, err
	}
	deps := Deps{Logger: o.Logger, Blobs: blobs}
	if o.ClickHouseDSN != "none" {
		conn, db, err := ingest.Open(ctx, o.ClickHouseDSN)
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, func() { conn.Close() })
		deps.Data = NewData(conn, db)
	}
	if len(o.Brokers) > 0 {
		if err := kafka.EnsureTopics(ctx, o.Brokers, 0); err != nil {
			return nil, err
		}
		users, err := OpenControlUsers(ctx, o.Brokers)
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, func() { users.Close() })
		deps.Users = users
		pols, err := OpenControlPolicies(ctx, o.Brokers)
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, func() { pols.Close() })
		deps.Policies = pols
		pr, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: o.Brokers, SpoolDir: filepath.Join(o.DataDir, "console", "spool"), Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pr.Close(ctx)
		})
		deps.Reviews = ProducerReviews{P: pr}
	} else {
		deps.Users = NewFileUsers(UsersFile(o.DataDir))
	}
	if o.AdminURL != "" {
		deps.Control = NewAdminClient(o.AdminURL, o.AdminToken)
	}
	if p.Console, err = New(Config{Secure: o.TLSCert != "", TrustedProxies: o.TrustedProxies}, deps); err != nil {
		return nil, err
	}
	return p, nil
}

// Close closes what OpenProcess opened, last opened first.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// Serve runs the console on ln (over TLS when configured) and its queue
// refresher until ctx ends, then drains with a deadline.
func (p *Process) Serve(ctx context.Context, ln net.Listener) error {
	o := p.cfg
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("console tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := p.App().Listener(ln); err != nil {
			return fmt.Errorf("console serve: %w", err)
		}
		return nil
	})
	g.Go(func() error { return p.Run(gctx, o.Refresh) })
	g.Go(func() error {
		<-gctx.Done()
		return p.App().ShutdownWithTimeout(10 * time.Second)
	})
	return g.Wait()
}
