"""Apache Cassandra as the embedded CQL server for the Scylla message store.

Cassandra speaks the same CQL protocol as Scylla and works with the same driver, so the
Scylla store runs here unchanged where no Scylla (nor Docker to start one) is at hand. 5.0 is
the first line that supports JDK 17. One node on loopback, data in `data_dir`, a small heap.
A node of a local cluster (devstack/embedded/cluster.py) has an address of its own (127.0.0.N,
the same ports on each), a token of its own and the first node as its seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.embedded.maven import classpath, java_binary
from devstack.embedded.process import port_answers
from devstack.embedded.service import EmbeddedService

CASSANDRA_VERSION = "5.0.6"
ARTIFACTS = (f"org.apache.cassandra:cassandra-all:{CASSANDRA_VERSION}",)
START_TIMEOUT_S = 180.0

# From Cassandra's conf/jvm17-server.options: the JDK internals it reaches into.
JDK17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    *(
        f"--add-exports={module}=ALL-UNNAMED"
        for module in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach",
        )
    ),
    *(
        f"--add-opens={module}=ALL-UNNAMED"
        for module in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "jdk.compiler/com.sun.tools.javac",
            "java.base/java.lang",
            "java.base/java.util",
        )
    ),
    "-Dio.netty.tryReflectionSetAccessible=true",
]

LOGBACK = """\
<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level %date{ISO8601} %logger{0} - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="OUT"/></root>
  <logger name="org.apache.cassandra.service.CassandraDaemon" level="INFO"/>
</configuration>
"""


@dataclass(frozen=True)
class Ring:
    """Where one node is in its ring: its address, its token, the seed's address. The
    default: a single node."""

    host: str = "127.0.0.1"
    token: int = 0
    seed: str = "127.0.0.1"

    @property
    def clustered(self) -> bool:
        return self.host != self.seed or self.token != 0


def cassandra_yaml(data_dir: Path, port: int, storage_port: int, ring: Ring = Ring()) -> str:
    # A node of a new local cluster joins with its token and no data to stream (there is
    # none yet), and takes fewer threads and less memtable than a server's defaults.
    cluster = (
        """\
auto_bootstrap: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
max_hint_window: 3h
"""
        if ring.clustered
        else ""
    )
    return f"""\
cluster_name: parley-embedded
num_tokens: 1
initial_token: {ring.token}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories: [{data_dir / "data"}]
commitlog_directory: {data_dir / "commitlog"}
saved_caches_directory: {data_dir / "saved_caches"}
hints_directory: {data_dir / "hints"}
cdc_raw_directory: {data_dir / "cdc_raw"}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{ring.seed}:{storage_port}"
listen_address: {ring.host}
rpc_address: {ring.host}
storage_port: {storage_port}
native_transport_port: {port}
start_native_transport: true
endpoint_snitch: SimpleSnitch
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
concurrent_compactors: 1
# One node: lightweight transactions and writes need no other replica to answer.
write_request_timeout: 5000ms
cas_contention_timeout: 5000ms
{cluster}"""


class EmbeddedCassandra(EmbeddedService):
    """A Cassandra node serving CQL on `ring.host`:`port` (a single node by default)."""

    name = "Cassandra"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        storage_port: int | None = None,
        log_path: Path | None = None,
        heap_mb: int = 768,
        ring: Ring = Ring(),
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.storage_port = storage_port if storage_port is not None else port + 1
        self.ring = ring
        self._heap_mb = heap_mb
        super().__init__([port, self.storage_port], log_path, host=ring.host)

    def launch(self) -> None:
        """Start the JVM; return once CQL is served (native transport opens last)."""
        self._check_ports()
        java = java_binary()
        jars = classpath(f"cassandra-{CASSANDRA_VERSION}", ARTIFACTS)
        jamm = next(jar for jar in jars if jar.name.startswith("jamm-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "cassandra.yaml"
        config.write_text(cassandra_yaml(self.data_dir, self.port, self.storage_port, self.ring))
        logback = self.data_dir / "logback.xml"
        logback.write_text(LOGBACK)
        command = [
            java,
            f"-Xms{self._heap_mb}m",
            f"-Xmx{self._heap_mb}m",
            "-Xss256k",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            *JDK17_OPTIONS,
            f"-javaagent:{jamm}",
            f"-Dcassandra.config=file://{config}",
            f"-Dlogback.configurationFile=file://{logback}",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.logdir={self.data_dir}",
            "-Dcassandra-foreground=yes",
            # One node: nothing to gossip with, no ring to wait for. A node joining the seed
            # of a local cluster waits up to 5 s for the seed's answer to its first gossip;
            # it has its token and no data to stream, so it may join beside another.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            f"-Dcassandra.ring_delay_ms={5000 if self.ring.host != self.ring.seed else 0}",
            "-Dcassandra.superuser_setup_delay_ms=0",
            *(["-Dcassandra.consistent.rangemovement=false"] if self.ring.clustered else []),
            "-cp",
            ":".join(map(str, jars)),
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        self._spawn(command, lambda: port_answers(self.host, self.port), START_TIMEOUT_S)
