package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/routelab/routelab/events"
)

type keyCreateRequest struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// keyView is a key as the admin API shows it: never its hash, which is
// enough to look the key up and, for a short or leaked secret, to confirm
// a guess offline.
type keyView struct {
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Name    string `json:"name,omitempty"`
	Created int64  `json:"created"` // Unix seconds
	Revoked bool   `json:"revoked"`
}

func viewKey(k Key) keyView {
	return keyView{ID: k.ID, Tenant: k.Tenant, Name: k.Name, Created: k.Created, Revoked: k.Revoked}
}

type keyCreateResponse struct {
	keyView
	Secret string `json:"secret"` // shown once; only its hash is stored
}

func (h *handlers) keyCreate(c *fiber.Ctx) error {
	var r keyCreateRequest
	if err := decodeJSON(c, &r); err != nil {
		return err
	}
	r.Tenant = strings.TrimSpace(r.Tenant)
	if r.Tenant == "" || len(r.Tenant) > 128 {
		return errInvalid("tenant", "tenant is required")
	}
	k, secret, err := h.deps.Keys.Create(c.UserContext(), r.Tenant, r.Name)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(keyCreateResponse{keyView: viewKey(k), Secret: secret})
}

func (h *handlers) keyList(c *fiber.Ctx) error {
	ks, err := h.deps.Keys.List(c.UserContext())
	if err != nil {
		return err
	}
	out := make([]keyView, len(ks))
	for i, k := range ks {
		out[i] = viewKey(k)
	}
	return c.JSON(fiber.Map{"keys": out})
}

func (h *handlers) keyRevoke(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := h.deps.Keys.Revoke(c.UserContext(), id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Field: "id", Message: "no such key"}
		}
		return err
	}
	return c.JSON(fiber.Map{"id": id, "revoked": true})
}

var errNoPolicyAdmin = &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Message: "no policy control plane on this server"}

// policyGet shows the live policy document and its version.
func (h *handlers) policyGet(c *fiber.Ctx) error {
	if h.deps.Policy == nil {
		return errNoPolicyAdmin
	}
	v, doc, ok := h.deps.Policy.Live()
	if !ok {
		return &Error{Status: fiber.StatusNotFound, Code: CodeNotFound, Message: "no policy loaded"}
	}
	return c.JSON(fiber.Map{"version": v, "policy": json.RawMessage(doc)})
}

// policyPush publishes a policy document; it returns once the document is
// committed to the control-plane topic and live on this replica.
func (h *handlers) policyPush(c *fiber.Ctx) error {
	if h.deps.Policy == nil {
		return errNoPolicyAdmin
	}
	if !isJSON(c) {
		return &Error{Status: fiber.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: "Content-Type must be application/json"}
	}
	doc := append([]byte(nil), c.Body()...)
	if !json.Valid(doc) {
		return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidJSON, Message: "policy is not valid JSON"}
	}
	v, err := h.deps.Policy.Push(c.UserContext(), doc)
	if err != nil {
		return err
	}
	h.auditPolicy(c, "policy.push", v, doc)
	return c.JSON(fiber.Map{"version": v, "status": "live"})
}

func (h *handlers) policyRollback(c *fiber.Ctx) error {
	if h.deps.Policy == nil {
		return errNoPolicyAdmin
	}
	from, _, _ := h.deps.Policy.Live()
	v, err := h.deps.Policy.Rollback(c.UserContext())
	if err != nil {
		return err
	}
	rb := struct {
		From   string          `json:"from"`
		Policy json.RawMessage `json:"policy,omitempty"`
	}{From: from}
	if lv, doc, ok := h.deps.Policy.Live(); ok && lv == v && json.Valid(doc) {
		rb.Policy = doc
	}
	body, _ := json.Marshal(rb)
	h.auditPolicy(c, "policy.rollback", v, body)
	return c.JSON(fiber.Map{"version": v, "status": "live"})
}

// auditPolicy records a change of the policies topic as an events.Audit
// (routelab.audit, ingested into ClickHouse's audit table, shown as the
// history on the console's policy page). Subject is the version the change
// made live or staged; body a JSON document (the policy, or for a rollback
// {"from", "policy"}).
func (h *handlers) auditPolicy(c *fiber.Ctx, action, version string, body []byte) {
	if h.deps.Events == nil {
		return
	}
	if !json.Valid(body) {
		body = []byte("{}")
	}
	h.deps.Events.Enqueue(events.TopicAudit, "policy/"+version, &events.Audit{
		Header: events.NewHeader("_system", ""), Action: action, Subject: version, Actor: actor(c), Body: string(body),
	})
}

// PolicyStager is a PolicyAdmin that can also publish a policy version
// without making it live, so an experiment arm can route with it by version
// (a canary of a candidate policy).
type PolicyStager interface {
	Stage(ctx context.Context, doc []byte) (version string, err error) // returns once applied locally
}

// policyStage publishes a policy document without making it live.
func (h *handlers) policyStage(c *fiber.Ctx) error {
	st, ok := h.deps.Policy.(PolicyStager)
	if !ok {
		return errNoPolicyAdmin
	}
	if !isJSON(c) {
		return &Error{Status: fiber.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: "Content-Type must be application/json"}
	}
	doc := append([]byte(nil), c.Body()...)
	if !json.Valid(doc) {
		return &Error{Status: fiber.StatusBadRequest, Code: CodeInvalidJSON, Message: "policy is not valid JSON"}
	}
	v, err := st.Stage(c.UserContext(), doc)
	if err != nil {
		return err
	}
	h.auditPolicy(c, "policy.stage", v, doc)
	live, _, _ := h.deps.Policy.Live()
	return c.JSON(fiber.Map{"version": v, "status": "staged", "live": live})
}
