package Kordon::OpenAPI;

=head1 NAME

Kordon::OpenAPI - fixtures for the t/05N-openapi-*.t edge tests

=head1 SYNOPSIS

    use Test::Kordon;
    use Kordon::OpenAPI;

    __DATA__
    === TEST 1: ...
    --- openapi
    { "openapi": "3.1.0", ... }        # optional: the block's document
    --- config
        kordon_openapi_validate on;
        location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }

=head1 DESCRIPTION

Every block gets C<kordon_openapi openapi.json;> in its http block
(unless it has C<--- no_openapi>) and problem_config() in its server,
and its C<--- openapi> section (default: C<$Kordon::OpenAPI::DOC>, a
small document using every keyword the validator knows; with
C<--- real_openapi>, the real one; with C<--- schema>, a document
whose only operation, POST /s, takes that schema) written to SERVROOT/conf/openapi.json.  C<$Kordon::OpenAPI::CONFIG> and C<$Kordon::OpenAPI::MORE_HEADERS> are
a file's defaults for blocks without those sections.
C<$TEST_NGINX_OPENAPI_REAL> is the real
document, build/openapi/openapi.json, as C<make> builds it from
conf/openapi.yaml.

=cut

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::Kordon;

my $Top = abs_path(dirname(__FILE__) . '/../../..');
$ENV{TEST_NGINX_OPENAPI_REAL} = "$Top/build/openapi/openapi.json";
$ENV{TEST_NGINX_SWAGGER_UI} = "$Top/build/openapi/swagger-ui";

# a file's defaults for blocks without a config or more_headers section
our $CONFIG;
our $MORE_HEADERS;
our $REAL;          # every block uses the real document

our $DOC = <<'JSON';
{
  "openapi": "3.1.0",
  "info": { "title": "test", "version": "1" },
  "paths": {
    "/things": {
      "get": {
        "parameters": [
          { "name": "q", "in": "query", "required": true,
            "schema": { "type": "string", "minLength": 1 } },
          { "name": "limit", "in": "query",
            "schema": { "type": "integer", "minimum": 1, "maximum": 100 } },
          { "name": "active", "in": "query",
            "schema": { "type": "boolean" } }
        ]
      },
      "post": {
        "x-kordon-max-body-size": 1024,
        "parameters": [
          { "name": "Idempotency-Key", "in": "header", "required": true,
            "schema": { "type": "string", "format": "uuid" } }
        ],
        "requestBody": {
          "required": true,
          "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Thing" } } }
        }
      }
    },
    "/things/{id}": {
      "parameters": [
        { "name": "id", "in": "path", "required": true,
          "schema": { "type": "string", "format": "uuid" } }
      ],
      "get": {},
      "delete": {}
    },
    "/things/special": { "get": {} },
    "/pages/{n}": {
      "get": {
        "parameters": [
          { "name": "n", "in": "path", "required": true,
            "schema": { "type": "integer", "minimum": 1 } }
        ]
      }
    },
    "/shapes": {
      "post": { "requestBody": { "content": { "application/json": {
        "schema": { "oneOf": [
          { "$ref": "#/components/schemas/Circle" },
          { "$ref": "#/components/schemas/Square" } ] } } } } }
    },
    "/numbers": {
      "post": { "requestBody": { "content": { "application/json": {
        "schema": { "oneOf": [ { "type": "integer" },
                               { "minimum": 10 } ] } } } } }
    },
    "/labels": {
      "post": { "requestBody": { "content": { "application/json": {
        "schema": { "anyOf": [ { "type": "string", "maxLength": 3 },
                               { "type": "integer" } ] } } } } }
    },
    "/pairs": {
      "post": { "requestBody": { "content": { "application/json": {
        "schema": { "type": "object",
                    "allOf": [ { "required": [ "a" ] },
                               { "required": [ "b" ] } ],
                    "not": { "required": [ "c" ] } } } } } }
    },
    "/actions": { "post": {} },
    "/forms": {
      "post": { "requestBody": { "content": {
        "application/x-www-form-urlencoded": {} } } }
    },
    "/anything": {
      "put": { "requestBody": { "content": { "application/json": {
        "schema": true } } } }
    }
  },
  "components": {
    "schemas": {
      "Thing": {
        "type": "object",
        "additionalProperties": false,
        "required": [ "name", "amount", "currency" ],
        "properties": {
          "name": { "type": "string", "minLength": 2, "maxLength": 5 },
          "amount": { "type": "integer", "exclusiveMinimum": 0,
                      "maximum": 9223372036854775807 },
          "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
          "email": { "type": "string", "format": "email" },
          "at": { "type": "string", "format": "date-time" },
          "kind": { "enum": [ "a", "b" ] },
          "version": { "const": 1 },
          "ratio": { "type": "number", "minimum": 0,
                     "exclusiveMaximum": 1 },
          "tags": { "type": "array", "items": { "type": "string" },
                    "minItems": 1, "maxItems": 3 },
          "note": { "type": [ "string", "null" ] },
          "a/b~c": { "type": "integer" },
          "child": { "$ref": "#/components/schemas/Thing" }
        }
      },
      "Circle": { "type": "object", "required": [ "r" ],
                  "additionalProperties": false,
                  "properties": { "r": { "type": "number" } } },
      "Square": { "type": "object", "required": [ "side" ],
                  "additionalProperties": false,
                  "properties": { "side": { "type": "number" } } }
    }
  }
}
JSON

add_block_preprocessor(sub {
    my $block = shift;
    my $root = servroot();
    my $doc = (defined $block->real_openapi || $REAL) ? real()
              : defined $block->schema ? schema_doc($block->schema)
              : ($block->openapi // $DOC);
    open my $fh, '>', "$root/conf/openapi.json"
        or die "cannot write $root/conf/openapi.json: $!";
    print $fh $doc;
    close $fh;
    unless (defined $block->no_openapi) {
        $block->set_value(http_config => "    kordon_openapi openapi.json;\n"
                                         . ($block->http_config // ''));
    }
    $block->set_value(config => problem_config()
                                . ($block->config // $CONFIG // ''));
    $block->set_value(more_headers => $MORE_HEADERS)
        if defined $MORE_HEADERS && !defined $block->more_headers;
});


# a document whose one schema, at /components/schemas/S, is $s
sub schema_doc {
    (my $s = shift) =~ s/\s+\z//;
    return '{"openapi":"3.1.0","info":{"title":"t","version":"1"},'
        . '"paths":{"/s":{"post":{"requestBody":{"content":'
        . '{"application/json":{"schema":{"$ref":"#/components/schemas/S"}}}'
        . '}}}},"components":{"schemas":{"S":' . $s . '}}}';
}

# the real document, as `make` built it
sub real {
    my $path = $ENV{TEST_NGINX_OPENAPI_REAL};
    open my $fh, '<', $path or die "cannot read $path (run make): $!";
    local $/;
    return <$fh>;
}

1;
