package console

// Access lists every route as "METHOD /path" with who may call it (public,
// anyone, engineer, admin), for tests and docs.
func (c *Console) Access() map[string]string {
	names := map[access]string{public: "public", anyone: "anyone", engineer: "engineer", admin: "admin"}
	out := map[string]string{}
	for _, r := range c.routeTable() {
		out[r.method+" "+r.path] = names[r.who]
	}
	return out
}

// Deps returns the collaborators the console was built with.
func (c *Console) Deps() Deps { return c.deps }
