package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

// Reserved words of DynamoDB's expression language are named through
// placeholders.
const (
	nameOwner = "#owner"
	nameTTL   = "#ttl"
	nameSeq   = "#seq"
)

func (s *Store) PutConnection(ctx context.Context, c store.Connection) error {
	it := item{}
	it.setS(attrConnectionID, c.ID)
	it.setS(attrSubdomain, c.Subdomain) // left out when empty: a GSI key cannot be ""
	it.setS(attrOwner, c.Owner)
	it.setTime(attrCreatedAt, c.CreatedAt)
	it.setExpiry(c.ExpiresAt)
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.tables.Connections, Item: it})
	if err != nil {
		return fmt.Errorf("put connection %s: %w", c.ID, err)
	}
	return nil
}

func (s *Store) GetConnection(ctx context.Context, id string) (store.Connection, error) {
	it, err := s.get(ctx, s.tables.Connections, attrConnectionID, id, "")
	if err != nil {
		return store.Connection{}, fmt.Errorf("get connection %s: %w", id, err)
	}
	if !it.live(s.now()) {
		return store.Connection{}, fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
	}
	return store.Connection{
		ID:        it.s(attrConnectionID),
		Subdomain: it.s(attrSubdomain),
		Owner:     it.s(attrOwner),
		CreatedAt: it.time(attrCreatedAt),
		ExpiresAt: it.time(attrExpiresAt),
	}, nil
}

// connectionLive reports whether the connection exists and has not expired,
// reading only its expiry.
func (s *Store) connectionLive(ctx context.Context, id string) (bool, error) {
	it, err := s.get(ctx, s.tables.Connections, attrConnectionID, id, attrExpiresAt)
	if err != nil {
		return false, fmt.Errorf("get connection %s: %w", id, err)
	}
	return it.live(s.now()), nil
}

// get reads one item by its partition key with a strongly consistent read.
func (s *Store) get(ctx context.Context, table, keyName, key, projection string) (item, error) {
	in := &dynamodb.GetItemInput{
		TableName:      &table,
		Key:            item{keyName: sv(key)},
		ConsistentRead: aws.Bool(true),
	}
	if projection != "" {
		in.ProjectionExpression = &projection
	}
	out, err := s.db.GetItem(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func (s *Store) SetConnectionSubdomain(ctx context.Context, id, subdomain string) error {
	in := &dynamodb.UpdateItemInput{
		TableName:           &s.tables.Connections,
		Key:                 item{attrConnectionID: sv(id)},
		ConditionExpression: aws.String("attribute_exists(connectionId) AND expiresAt > :now"),
		ExpressionAttributeValues: item{
			":now": nv(unixNano(s.now())),
		},
	}
	if subdomain == "" {
		in.UpdateExpression = aws.String("REMOVE subdomain")
	} else {
		in.UpdateExpression = aws.String("SET subdomain = :sub")
		in.ExpressionAttributeValues[":sub"] = sv(subdomain)
	}
	_, err := s.db.UpdateItem(ctx, in)
	switch {
	case conditionFailed(err):
		return fmt.Errorf("connection %s: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("set subdomain of connection %s: %w", id, err)
	}
	return nil
}

func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.tables.Connections,
		Key:       item{attrConnectionID: sv(id)},
	})
	if err != nil {
		return fmt.Errorf("delete connection %s: %w", id, err)
	}
	return nil
}
