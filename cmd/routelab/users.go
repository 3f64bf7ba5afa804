package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/routelab/routelab/console"
	"github.com/routelab/routelab/events"
)

func runUsers(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("users", `Manage console accounts (kept in DATA_DIR/console/users.json, bcrypt-hashed).

  routelab users create --name NAME --role reviewer|engineer|admin [--password-stdin]
  routelab users list [--json]

Without --password-stdin, create reads the password from ROUTELAB_USER_PASSWORD.
With --kafka-brokers the accounts live in the compacted routelab.users topic
(what a console started with --kafka-brokers reads).`)
	dataDir := fs.String("data-dir", "./.routelab", "routelab data dir (env ROUTELAB_DATA_DIR)")
	name := fs.String("name", "", "account name (create)")
	role := fs.String("role", "reviewer", "reviewer, engineer or admin (create)")
	stdinPW := fs.Bool("password-stdin", false, "read the password from the first line of stdin (create)")
	asJSON := fs.Bool("json", false, "print one JSON object on the last line of stdout")
	brokers := fs.String("kafka-brokers", "", "Kafka brokers, comma separated (env ROUTELAB_KAFKA_BROKERS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	envDefault(fs, env, "data-dir", "ROUTELAB_DATA_DIR")
	envDefault(fs, env, "kafka-brokers", "ROUTELAB_KAFKA_BROKERS")
	rest := fs.Args()
	if len(rest) != 1 || (rest[0] != "create" && rest[0] != "list") {
		fs.Usage()
		return errors.New("users: want one action, create or list")
	}
	var store console.UserStore = console.NewFileUsers(console.UsersFile(*dataDir))
	where := console.UsersFile(*dataDir)
	if *brokers != "" {
		cu, err := console.OpenControlUsers(ctx, strings.Split(*brokers, ","))
		if err != nil {
			return err
		}
		defer cu.Close()
		store, where = cu, "topic "+events.TopicUsers
	}
	if rest[0] == "list" {
		us, err := store.List(ctx)
		if err != nil {
			return err
		}
		type row struct {
			Name    string    `json:"name"`
			Role    string    `json:"role"`
			Created time.Time `json:"created"`
		}
		rows := []row{}
		for _, u := range us {
			rows = append(rows, row{u.Name, string(u.Role), u.Created})
			if !*asJSON {
				fmt.Fprintf(env.Stdout, "%-24s %-9s %s\n", u.Name, u.Role, u.Created.Format(time.RFC3339))
			}
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"users": rows})
		}
		return nil
	}
	pw := env.Getenv("ROUTELAB_USER_PASSWORD")
	if *stdinPW {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		return errors.New("users create: no password (use --password-stdin or ROUTELAB_USER_PASSWORD)")
	}
	u, err := console.NewUser(*name, console.Role(*role), pw, time.Now())
	if err != nil {
		return err
	}
	if err := store.Create(ctx, u); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "users: created %s (%s) in %s\n", u.Name, u.Role, where)
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{"name": u.Name, "role": u.Role, "created": u.Created})
	}
	fmt.Fprintf(env.Stdout, "created %s (%s)\n", u.Name, u.Role)
	return nil
}
