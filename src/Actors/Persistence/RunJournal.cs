using System.Text.Json;
using Akka.Configuration;
using Microsoft.Data.Sqlite;

namespace MoCo.Actors.Persistence;

/// <summary>
/// Persistence configuration of the run journal: Akka.Persistence.Sql (linq2db) for the journal, the snapshot
/// store and the read journal, all three on one database, with Hyperion bound to <see cref="IMocoMessage"/>
/// for events and snapshots. A SQLite file inside the run directory by default, PostgreSQL for clusters.
/// </summary>
public static class RunJournal
{
    /// <summary>linq2db provider for SQLite through Microsoft.Data.Sqlite.</summary>
    public const string SqliteProvider = "SQLite.MS";

    /// <summary>linq2db provider for PostgreSQL 15 and later through Npgsql.</summary>
    public const string PostgreSqlProvider = "PostgreSQL.15";

    /// <summary>Id of the write journal plugin.</summary>
    public const string JournalPluginId = "akka.persistence.journal.sql";

    /// <summary>Id of the snapshot store plugin.</summary>
    public const string SnapshotStorePluginId = "akka.persistence.snapshot-store.sql";

    /// <summary>Id of the read journal plugin (for <c>PersistenceQuery.ReadJournalFor</c>).</summary>
    public const string ReadJournalPluginId = "akka.persistence.query.journal.sql";

    /// <summary>Journal and snapshots in the SQLite file <paramref name="databasePath"/>, tables created on first use.</summary>
    /// <param name="databasePath">The database file; created if missing (its directory must exist).</param>
    /// <returns>The persistence and serialization configuration.</returns>
    public static Config Sqlite(string databasePath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        return ForProvider(SqliteConnectionString(databasePath), SqliteProvider);
    }

    /// <summary>Journal and snapshots in PostgreSQL, tables created on first use.</summary>
    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <returns>The persistence and serialization configuration.</returns>
    public static Config PostgreSql(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return ForProvider(connectionString, PostgreSqlProvider);
    }

    /// <summary>The Microsoft.Data.Sqlite connection string for a journal file.</summary>
    /// <param name="databasePath">The database file.</param>
    public static string SqliteConnectionString(string databasePath)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = Path.GetFullPath(databasePath),
            Mode = SqliteOpenMode.ReadWriteCreate,
            // Seconds a statement waits on a lock held by another connection (journal vs snapshot store).
            DefaultTimeout = 30,
        };
        return builder.ConnectionString;
    }

    /// <summary>The HOCON text for <paramref name="providerName"/>; what <see cref="Sqlite"/> and <see cref="PostgreSql"/> parse.</summary>
    /// <param name="connectionString">The ADO.NET connection string.</param>
    /// <param name="providerName">The linq2db provider name.</param>
    public static string Hocon(string connectionString, string providerName)
    {
        var cs = Quote(connectionString);
        var provider = Quote(providerName);
        return $$"""
            akka.persistence {
              journal {
                # every persistent actor journals through Akka.Persistence.Sql
                plugin = "{{JournalPluginId}}"
                sql {
                  class = "Akka.Persistence.Sql.Journal.SqlWriteJournal, Akka.Persistence.Sql"
                  connection-string = {{cs}}
                  provider-name = {{provider}}
                  # the current (non-legacy) schema: tables journal, tags, journal_metadata
                  table-mapping = default
                  # create the tables on first use
                  auto-initialize = on
                }
              }
              snapshot-store {
                plugin = "{{SnapshotStorePluginId}}"
                sql {
                  class = "Akka.Persistence.Sql.Snapshot.SqlSnapshotStore, Akka.Persistence.Sql"
                  connection-string = {{cs}}
                  provider-name = {{provider}}
                  table-mapping = default
                  auto-initialize = on
                }
              }
              query.journal.sql {
                class = "Akka.Persistence.Sql.Query.SqlReadJournalProvider, Akka.Persistence.Sql"
                connection-string = {{cs}}
                provider-name = {{provider}}
                table-mapping = default
              }
            }
            akka.actor {
              serializers {
                hyperion = "Akka.Serialization.HyperionSerializer, Akka.Serialization.Hyperion"
              }
              # our messages, events and snapshots (and nothing else of ours) go through Hyperion
              serialization-bindings {
                "MoCo.Actors.IMocoMessage, MoCo.Actors" = hyperion
              }
            }
            """;
    }

    /// <summary>Journal, snapshot store and read journal on one database.</summary>
    /// <param name="connectionString">The ADO.NET connection string.</param>
    /// <param name="providerName">The linq2db provider name (<see cref="SqliteProvider"/>, <see cref="PostgreSqlProvider"/>, ...).</param>
    /// <returns>The persistence and serialization configuration.</returns>
    public static Config ForProvider(string connectionString, string providerName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        ArgumentException.ThrowIfNullOrWhiteSpace(providerName);
        return ConfigurationFactory.ParseString(Hocon(connectionString, providerName));
    }

    /// <summary>A HOCON quoted string (HOCON quoted strings are JSON strings).</summary>
    private static string Quote(string value)
    {
        return JsonSerializer.Serialize(value);
    }
}
