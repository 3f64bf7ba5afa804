package console_test

import (
	"testing"

	"github.com/routelab/routelab/console"
)

func testDeps(t testing.TB) console.Deps {
	t.Helper()
	return console.Deps{Users: mustUsers(t)}
}
