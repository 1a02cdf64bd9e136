package tunnel

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
)

// Authorize is the $connect REQUEST authorizer: it verifies the token in
// the query string and allows the connection with the token's subject as
// its owner. Without a verifier it denies every connection and logs that
// no token secret is configured, rather than let anyone in.
func (s *Service) Authorize(ctx context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	log := s.log.With("sourceIp", ev.RequestContext.Identity.SourceIP)
	if s.verifier == nil {
		log.Error("authorizer: no token secret is configured (set TUNNEL_TOKEN_SECRET_ARN or TUNNEL_TOKEN_SECRET); denying")
		return policy("anonymous", "Deny", ev.MethodArn, nil), nil
	}
	token := ev.QueryStringParameters["token"]
	if token == "" {
		log.Info("authorizer: no token; denying")
		return policy("anonymous", "Deny", ev.MethodArn, nil), nil
	}
	owner, err := s.verifier.Verify(token)
	if err != nil {
		log.Info("authorizer: denying", "err", err)
		return policy("anonymous", "Deny", ev.MethodArn, nil), nil
	}
	return policy(owner, "Allow", ev.MethodArn, map[string]any{"owner": owner}), nil
}

func policy(principal, effect, resource string, context map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   effect,
				Resource: []string{resource},
			}},
		},
		Context: context,
	}
}
