package apigw

import _ "embed"

// OpenAPI is the OpenAPI (Swagger 2.0) document of the REST/JSON face,
// generated from api.proto and gateway.yaml by protoc-gen-openapiv2.
//
//go:embed api.swagger.json
var OpenAPI []byte
