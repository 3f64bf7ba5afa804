package ingest_test

import (
	"os"
	"testing"

	"github.com/routelab/routelab/ingest/ingesttest"
)

func TestMain(m *testing.M) { os.Exit(ingesttest.Main(m)) }
