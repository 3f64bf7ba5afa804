package server

import "github.com/gofiber/fiber/v2"

// routes lists every route the public listener answers.
func routes(app *fiber.App, h *handlers) {
	app.Use(h.requestID)

	app.Get("/healthz", h.healthz)
	app.Get("/readyz", h.readyz) // status only; the reason is on the admin listener

	// Signed links carry their own authorisation.
	app.Get("/v1/images/:id", h.imageGet)

	v1 := app.Group("/v1", h.auth)
	v1.Post("/images", h.admit, h.imagesNative)
	v1.Post("/images/generations", h.admit, h.openaiGenerations)
	v1.Post("/images/edits", h.admit, h.openaiEdits)
	v1.Post("/feedback", h.admit, h.feedback)
	v1.Get("/models", h.models)
	v1.Get("/usage", h.admit, h.usage)
}

// adminRoutes lists every route of the admin listener (Server.Admin): the
// admin API, never reachable through the public port.
func adminRoutes(app *fiber.App, h *handlers) {
	app.Use(h.requestID)

	app.Get("/healthz", h.healthz)
	app.Get("/readyz", h.readyzReason)
	app.Get("/metrics", h.metricsHandler())

	admin := app.Group("/admin", h.adminAuth)
	admin.Get("/keys", h.keyList)
	admin.Post("/keys", h.keyCreate)
	admin.Delete("/keys/:id", h.keyRevoke)
	admin.Get("/policy", h.policyGet)
	admin.Post("/policy", h.policyPush)
	admin.Post("/policy/rollback", h.policyRollback)
	admin.Post("/policy/stage", h.policyStage)
	admin.Get("/chains/:id/image", h.chainImage)
	experimentRoutes(admin, h)
}
