package tunnel

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Table schema shared with the Lambda's DynamoDB store (pkg/store/dynamo).
const (
	TTLAttribute       = "ttl"
	SubdomainIndexName = "subdomain-index"
)

// Tables are the three on-demand tables, all with TTL on TTLAttribute.
type Tables struct {
	// Connections: one item per WebSocket connection, key connectionId (S);
	// GSI SubdomainIndexName on subdomain (S) for listing.
	Connections awsdynamodb.Table
	// Subdomains: one item per claimed name, key subdomain (S), written
	// conditionally so two agents never hold one name.
	Subdomains awsdynamodb.Table
	// Responses: response chunks, key requestId (S) + seq (N), short TTL.
	Responses awsdynamodb.Table
}

func newTables(scope constructs.Construct) Tables {
	t := Tables{
		Connections: newTable(scope, "ConnectionsTable", "connectionId", ""),
		Subdomains:  newTable(scope, "SubdomainsTable", "subdomain", ""),
		Responses:   newTable(scope, "ResponsesTable", "requestId", "seq"),
	}
	t.Connections.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(SubdomainIndexName),
		PartitionKey:   stringKey("subdomain"),
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})
	return t
}

// newTable makes a PAY_PER_REQUEST table keyed by partition (S) and, when
// sort is not empty, sort (N).
func newTable(scope constructs.Construct, id, partition, sort string) awsdynamodb.Table {
	props := &awsdynamodb.TableProps{
		PartitionKey:        stringKey(partition),
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String(TTLAttribute),
		RemovalPolicy:       awscdk.RemovalPolicy_DESTROY,
	}
	if sort != "" {
		props.SortKey = &awsdynamodb.Attribute{Name: jsii.String(sort), Type: awsdynamodb.AttributeType_NUMBER}
	}
	return awsdynamodb.NewTable(scope, jsii.String(id), props)
}

func stringKey(name string) *awsdynamodb.Attribute {
	return &awsdynamodb.Attribute{Name: jsii.String(name), Type: awsdynamodb.AttributeType_STRING}
}
