# Postgres for the compose stack: the local stand-in for Supabase's database.
# Debian's postgresql on the debootstrapped base, since no registry image can be pulled here.
ARG BASE_IMAGE=paradyze/base:bookworm
FROM ${BASE_IMAGE}

# No "main" cluster from the package's postinst: the entrypoint initialises PGDATA itself,
# so the data lives in the volume and honours POSTGRES_USER/PASSWORD/DB.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 2775 /var/run/postgresql

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    POSTGRES_USER=postgres \
    POSTGRES_DB=postgres

COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
RUN chmod 0755 /usr/local/bin/postgres-entrypoint.sh

VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=10 \
    CMD pg_isready -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" || exit 1
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
