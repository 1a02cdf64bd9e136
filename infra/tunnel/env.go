package tunnel

// Environment variables read by the Lambda binary (./lambda). The names are
// the contract with pkg/dispatch and pkg/store/dynamo; infra is its own
// module and cannot import them, so they are repeated here.
const (
	// EnvHandler selects the handler: connect, disconnect, forward,
	// response or authorizer.
	EnvHandler = "TUNNEL_HANDLER"
	// EnvStore is "dynamodb" on AWS.
	EnvStore = "TUNNEL_STORE"
	// EnvConnectionsTable, EnvSubdomainsTable and EnvResponsesTable are
	// the table names.
	EnvConnectionsTable = "TUNNEL_CONNECTIONS_TABLE"
	EnvSubdomainsTable  = "TUNNEL_SUBDOMAINS_TABLE"
	EnvResponsesTable   = "TUNNEL_RESPONSES_TABLE"
	// EnvManagementEndpoint is the WebSocket API's @connections endpoint,
	// https://{api-id}.execute-api.{region}.amazonaws.com/{stage}.
	EnvManagementEndpoint = "TUNNEL_MANAGEMENT_ENDPOINT"
	// EnvDomain is the custom domain; public URLs are https://<sub>.<domain>/.
	EnvDomain = "TUNNEL_DOMAIN"
	// EnvPublicURL is the HTTP API's endpoint when there is no custom
	// domain; public URLs are <EnvPublicURL>/<sub>/.
	EnvPublicURL = "TUNNEL_PUBLIC_URL"
	// EnvResponseDeadline is how long forward waits, as a Go duration.
	EnvResponseDeadline = "TUNNEL_RESPONSE_DEADLINE"
	// EnvTokenSecretArn is the secret whose value signs agent tokens.
	EnvTokenSecretArn = "TUNNEL_TOKEN_SECRET_ARN"
)

// Values of EnvHandler, one per function.
const (
	HandlerConnect    = "connect"
	HandlerDisconnect = "disconnect"
	HandlerForward    = "forward"
	HandlerResponse   = "response"
	HandlerAuthorizer = "authorizer"
)
