package web

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument describes every route of the API (OpenAPI 3.1). It is
// written by hand; TestOpenAPICoversEveryRoute fails when a registered
// route is missing from it.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the API's OpenAPI document (JSON).
func OpenAPIDocument() []byte { return openAPIDocument }

func openAPI(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
