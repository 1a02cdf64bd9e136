package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

func (s *Store) ClaimSubdomain(ctx context.Context, c store.Claim) error {
	it := item{}
	it.setS(attrSubdomain, c.Subdomain)
	it.setS(attrConnectionID, c.ConnectionID)
	it.setS(attrOwner, c.Owner)
	it.setS(attrKeyHash, c.KeyHash)
	it.setExpiry(c.ExpiresAt)

	// The old claim may be replaced when there is none, it has expired
	// (DynamoDB may not have swept it yet), the reclaim key matches, or it
	// is released and the same non-empty owner asks.
	cond := "attribute_not_exists(subdomain) OR attribute_not_exists(expiresAt) OR expiresAt <= :now"
	values := item{":now": nv(unixNano(s.now()))}
	var names map[string]string
	if c.KeyHash != "" {
		cond += " OR keyHash = :kh"
		values[":kh"] = sv(c.KeyHash)
	}
	if c.Owner != "" {
		cond += " OR (attribute_not_exists(connectionId) AND " + nameOwner + " = :owner)"
		values[":owner"] = sv(c.Owner)
		names = map[string]string{nameOwner: attrOwner}
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.tables.Subdomains,
		Item:                      it,
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	switch {
	case conditionFailed(err):
		return fmt.Errorf("subdomain %q: %w", c.Subdomain, store.ErrTaken)
	case err != nil:
		return fmt.Errorf("claim subdomain %q: %w", c.Subdomain, err)
	}
	return nil
}

func (s *Store) GetSubdomain(ctx context.Context, subdomain string) (store.Claim, error) {
	it, err := s.get(ctx, s.tables.Subdomains, attrSubdomain, subdomain, "")
	if err != nil {
		return store.Claim{}, fmt.Errorf("get subdomain %q: %w", subdomain, err)
	}
	if !it.live(s.now()) {
		return store.Claim{}, fmt.Errorf("subdomain %q: %w", subdomain, store.ErrNotFound)
	}
	return store.Claim{
		Subdomain:    it.s(attrSubdomain),
		ConnectionID: it.s(attrConnectionID),
		Owner:        it.s(attrOwner),
		KeyHash:      it.s(attrKeyHash),
		ExpiresAt:    it.time(attrExpiresAt),
	}, nil
}

func (s *Store) ReleaseSubdomain(ctx context.Context, subdomain, connectionID string, until time.Time) error {
	in := &dynamodb.UpdateItemInput{
		TableName:                &s.tables.Subdomains,
		Key:                      item{attrSubdomain: sv(subdomain)},
		ConditionExpression:      aws.String("connectionId = :id AND expiresAt > :now"),
		ExpressionAttributeNames: map[string]string{nameTTL: TTLAttribute},
		ExpressionAttributeValues: item{
			":id":  sv(connectionID),
			":now": nv(unixNano(s.now())),
		},
	}
	if until.IsZero() {
		in.UpdateExpression = aws.String("REMOVE connectionId, expiresAt, " + nameTTL)
	} else {
		in.UpdateExpression = aws.String("REMOVE connectionId SET expiresAt = :until, " + nameTTL + " = :ttl")
		in.ExpressionAttributeValues[":until"] = nv(unixNano(until))
		in.ExpressionAttributeValues[":ttl"] = nv(ttlSeconds(until))
	}
	_, err := s.db.UpdateItem(ctx, in)
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("release subdomain %q: %w", subdomain, err)
	}
	return nil
}
