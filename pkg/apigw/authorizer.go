package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// maxAuthorizerResult is API Gateway's limit on a Lambda authorizer's
// response (8 KB).
const maxAuthorizerResult = 8 << 10

// authorizerEvent is the REQUEST authorizer event of a WebSocket API as AWS
// sends it: events.APIGatewayCustomAuthorizerRequestTypeRequest's fields,
// with the WebSocket requestContext (routeKey "$connect", eventType
// "CONNECT", connectionId, ...) in place of the REST one. It decodes into
// events.APIGatewayCustomAuthorizerRequestTypeRequest. A dispatcher must
// look at "type" and "methodArn" before requestContext.eventType, which says
// CONNECT here too.
type authorizerEvent struct {
	Type                            string                                        `json:"type"`
	MethodArn                       string                                        `json:"methodArn"`
	Headers                         map[string]string                             `json:"headers"`
	MultiValueHeaders               map[string][]string                           `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string                             `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string                           `json:"multiValueQueryStringParameters"`
	StageVariables                  map[string]string                             `json:"stageVariables"`
	RequestContext                  events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
}

// authorizerResult is events.APIGatewayCustomAuthorizerResponse, decoded so
// that Action and Resource may each be a string or a list, as IAM allows.
type authorizerResult struct {
	PrincipalID    string `json:"principalId"`
	PolicyDocument struct {
		Version   string
		Statement []struct {
			Effect   string
			Action   stringList
			Resource stringList
		}
	} `json:"policyDocument"`
	Context map[string]any `json:"context"`
}

type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*l = many
	return nil
}

var errDenied = errors.New("authorizer denied the connection")

// authorize runs the REQUEST authorizer for the handshake of c. On success
// it stores the authorizer output in c.authorizer; otherwise it returns the
// HTTP status to refuse the handshake with and why.
func (s *Server) authorize(ctx context.Context, c *wsConn, h handshake) (int, error) {
	if h.query["token"] == "" {
		// The identity source is missing: API Gateway answers 401 without
		// invoking the authorizer.
		return http.StatusUnauthorized, errors.New("no token query string parameter")
	}
	arn := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/$connect",
		s.cfg.Region, s.cfg.AccountID, s.cfg.WebSocketAPIID, s.cfg.Stage)
	ev := authorizerEvent{
		Type:                            "REQUEST",
		MethodArn:                       arn,
		Headers:                         h.headers,
		MultiValueHeaders:               h.multiHeaders,
		QueryStringParameters:           h.query,
		MultiValueQueryStringParameters: h.multiQuery,
		StageVariables:                  map[string]string{},
		RequestContext:                  c.requestContext("$connect", "CONNECT", h.time),
	}
	start := time.Now()
	out, err := s.invoke(ctx, ev)
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("authorizer: %w", err)
	}
	if len(out) > maxAuthorizerResult {
		return http.StatusInternalServerError,
			fmt.Errorf("authorizer result is %d bytes, limit %d", len(out), maxAuthorizerResult)
	}
	var res authorizerResult
	if err := json.Unmarshal(out, &res); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("decode authorizer result: %w", err)
	}
	if !res.allows(arn) {
		return http.StatusForbidden, errDenied
	}
	auth := make(map[string]any, len(res.Context)+2)
	for k, v := range res.Context {
		auth[k] = v
	}
	auth["principalId"] = res.PrincipalID
	auth["integrationLatency"] = time.Since(start).Milliseconds()
	c.authorizer = auth
	return 0, nil
}

// allows evaluates the policy for execute-api:Invoke on arn as IAM does: an
// explicit Deny wins, otherwise an Allow is needed.
func (res *authorizerResult) allows(arn string) bool {
	allowed := false
	for _, st := range res.PolicyDocument.Statement {
		if !anyMatch(st.Action, "execute-api:Invoke") || !anyMatch(st.Resource, arn) {
			continue
		}
		switch {
		case strings.EqualFold(st.Effect, "Deny"):
			return false
		case strings.EqualFold(st.Effect, "Allow"):
			allowed = true
		}
	}
	return allowed
}

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if wildcardMatch(strings.ToLower(p), strings.ToLower(s)) {
			return true
		}
	}
	return false
}

// wildcardMatch matches IAM-style patterns: '*' is any run of characters
// ('/' included), '?' is any one character.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
