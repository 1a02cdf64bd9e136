package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableWait bounds how long CreateTables waits for one table to be ACTIVE.
const tableWait = 5 * time.Minute

// CreateTables creates the three tables on demand billing, with the
// subdomain-index GSI on connections and TTL enabled on ttl, and waits until
// they are ACTIVE. Tables that exist already are fine (their key schema is
// checked), so it can run at every start; the CDK stack creates the same
// tables on AWS.
func CreateTables(ctx context.Context, client *dynamodb.Client, tables Tables) error {
	specs := []*dynamodb.CreateTableInput{
		{
			TableName:            aws.String(tables.Connections),
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrConnectionID), KeyType: types.KeyTypeHash}},
			AttributeDefinitions: attrDefs(attrConnectionID, attrSubdomain),
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName:  aws.String(SubdomainIndex),
				KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String(attrSubdomain), KeyType: types.KeyTypeHash}},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
			}},
		},
		{
			TableName:            aws.String(tables.Subdomains),
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrSubdomain), KeyType: types.KeyTypeHash}},
			AttributeDefinitions: attrDefs(attrSubdomain),
		},
		{
			TableName: aws.String(tables.Responses),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrRequestID), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrSeq), KeyType: types.KeyTypeRange},
			},
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrRequestID), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrSeq), AttributeType: types.ScalarAttributeTypeN},
			},
		},
	}
	for _, in := range specs {
		in.BillingMode = types.BillingModePayPerRequest
		_, err := client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", *in.TableName, err)
		}
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 5*time.Second
	})
	for _, in := range specs {
		out, err := waiter.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, tableWait)
		if err != nil {
			return fmt.Errorf("wait for table %s: %w", *in.TableName, err)
		}
		if got, want := keyNames(out.Table.KeySchema), keyNames(in.KeySchema); !slices.Equal(got, want) {
			return fmt.Errorf("table %s exists with key %v, want %v", *in.TableName, got, want)
		}
		if err := enableTTL(ctx, client, *in.TableName); err != nil {
			return err
		}
	}
	return nil
}

func attrDefs(names ...string) []types.AttributeDefinition {
	out := make([]types.AttributeDefinition, len(names))
	for i, n := range names {
		out[i] = types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	return out
}

func keyNames(ks []types.KeySchemaElement) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k.KeyType) + ":" + aws.ToString(k.AttributeName)
	}
	return out
}

// enableTTL turns on TTL on the ttl attribute unless it is on (or turning
// on) already: UpdateTimeToLive refuses to enable it twice.
func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		return fmt.Errorf("describe TTL of table %s: %w", table, err)
	}
	if ttl := d.TimeToLiveDescription; ttl != nil {
		switch ttl.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if aws.ToString(ttl.AttributeName) != TTLAttribute {
				return fmt.Errorf("table %s has TTL on %q, want %q", table, aws.ToString(ttl.AttributeName), TTLAttribute)
			}
			return nil
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on table %s: %w", table, err)
	}
	return nil
}
