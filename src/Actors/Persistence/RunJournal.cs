using System.Text.Json;
using Akka.Configuration;
using Microsoft.Data.Sqlite;
using MoCo.Actors.Serialization;
using Npgsql;

namespace MoCo.Actors.Persistence;

/// <summary>
/// Persistence configuration of the run journal: Akka.Persistence.Sql (linq2db) for the journal, the snapshot
/// store and the read journal, all three on one database, with Hyperion bound to <see cref="IMocoMessage"/>
/// for events and snapshots. A SQLite file inside the run directory by default, PostgreSQL for clusters.
/// </summary>
public static class RunJournal
{
    /// <summary>
    /// The name of the SQLite journal file inside a run directory (<c>runs/&lt;run id&gt;/journal.db</c>); the history
    /// commands accept the run directory and find the file by this name.
    /// </summary>
    public const string DatabaseFileName = "journal.db";

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

    /// <summary>
    /// The configuration for a journal named the way the <c>moco</c> commands accept it: a PostgreSQL connection string
    /// (see <see cref="IsPostgreSqlConnectionString"/>), a run directory holding <see cref="DatabaseFileName"/>, or the
    /// SQLite file itself.
    /// </summary>
    /// <param name="journal">The connection string, run directory or file.</param>
    /// <returns>The persistence and serialization configuration.</returns>
    /// <exception cref="FileNotFoundException">A SQLite journal was named and does not exist.</exception>
    /// <exception cref="ArgumentException">A PostgreSQL URI could not be read.</exception>
    public static Config ForLocation(string journal)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(journal);
        if (IsPostgreSqlConnectionString(journal))
        {
            return PostgreSql(NormalizePostgreSqlConnectionString(journal));
        }

        return Sqlite(ResolveSqliteFile(journal));
    }

    /// <summary>
    /// Whether <paramref name="journal"/> names a PostgreSQL database rather than a path: a <c>postgres://</c> or
    /// <c>postgresql://</c> URI, or a key/value connection string with a <c>Host=</c> key.
    /// </summary>
    /// <param name="journal">What the user passed.</param>
    public static bool IsPostgreSqlConnectionString(string journal)
    {
        ArgumentNullException.ThrowIfNull(journal);
        var text = journal.Trim();
        return text.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            || text.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
            || text.Split(';').Any(part => part.TrimStart().StartsWith("Host=", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// An Npgsql key/value connection string for <paramref name="connectionString"/>; a
    /// <c>postgres://user:password@host:port/database</c> URI is converted, anything else is returned unchanged.
    /// </summary>
    /// <param name="connectionString">A URI or a key/value connection string.</param>
    /// <exception cref="ArgumentException">The URI could not be read.</exception>
    public static string NormalizePostgreSqlConnectionString(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var text = connectionString.Trim();
        if (!text.Contains("://", StringComparison.Ordinal))
        {
            return text;
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new ArgumentException($"'{Redact(text)}' is not a PostgreSQL URI (postgres://user:password@host:port/database).", nameof(connectionString));
        }

        var builder = new NpgsqlConnectionStringBuilder { Host = uri.Host };
        if (uri.Port > 0)
        {
            builder.Port = uri.Port;
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0)
        {
            builder.Database = database;
        }

        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':');
            builder.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// A connection string fit to print: the password of a URI (<c>user:password@</c>) and every <c>Password=</c> (or
    /// <c>pwd=</c>) value replaced by <c>***</c>. Error messages show only this.
    /// </summary>
    /// <param name="connectionString">A URI or a key/value connection string.</param>
    public static string Redact(string connectionString)
    {
        var text = connectionString;
        int scheme = text.IndexOf("://", StringComparison.Ordinal);
        int at = text.LastIndexOf('@');
        if (scheme >= 0 && at > scheme)
        {
            int colon = text.IndexOf(':', scheme + 3);
            if (colon >= 0 && colon < at)
            {
                text = text[..(colon + 1)] + "***" + text[at..];
            }
        }

        return System.Text.RegularExpressions.Regex.Replace(text, @"(?i)\b(password|pwd)\s*=\s*[^;]*", "$1=***");
    }

    /// <summary>The SQLite journal file for a run directory (its <see cref="DatabaseFileName"/>) or for the file itself.</summary>
    /// <param name="path">A run directory or a journal file.</param>
    /// <exception cref="FileNotFoundException">Neither exists.</exception>
    public static string ResolveSqliteFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (Directory.Exists(path))
        {
            var file = Path.Combine(path, DatabaseFileName);
            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"No run journal in '{path}' (expected the file {DatabaseFileName}).", file);
            }

            return file;
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No run journal at '{path}': neither a run directory nor a journal file.", path);
        }

        return path;
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
            {{SerializationHocon}}
            """;
    }

    /// <summary>
    /// The serialization half of the configuration, with a message key of this process alone (a journal reader, a
    /// single node): see <see cref="Serialization(ReadOnlySpan{byte})"/>.
    /// </summary>
    public static string SerializationHocon => Serialization(System.Security.Cryptography.RandomNumberGenerator.GetBytes(MocoWireSerializer.KeyBytes));

    /// <summary>
    /// The serialization of every actor system of ours: the journal's events and snapshots (<see cref="IJournalMessage"/>)
    /// through Hyperion with their allow-list (<see cref="MocoHyperionSerializer"/>); the messages between processes
    /// (<see cref="IWireMessage"/>) through <see cref="MocoWireSerializer"/> (their allow-list, and an HMAC under
    /// <paramref name="wireKey"/>, which every node of a cluster derives from its secret); Akka's JSON serializer replaced
    /// by <see cref="RefusingJsonSerializer"/>, and no fallback for types without a binding of their own, so that nothing
    /// else of ours is ever sent, and nothing a peer names is built from JSON.
    /// </summary>
    /// <param name="wireKey">The key of the cluster's message MACs (<see cref="MocoWireSerializer.DeriveKey"/>).</param>
    public static string Serialization(ReadOnlySpan<byte> wireKey)
    {
        var journal = string.Join(", ", HyperionAllowList.Journal.Select(t => Quote(t.AssemblyQualifiedName!)));
        var wire = string.Join(", ", HyperionAllowList.Wire.Select(t => Quote(t.AssemblyQualifiedName!)));
        return $$"""
            akka.actor {
              serializers {
                # Akka's Hyperion serializer, with an allow-list that works when serializing too (MocoHyperionSerializer)
                hyperion = "MoCo.Actors.Serialization.MocoHyperionSerializer, MoCo.Actors"
                # the messages between processes: an allow-list and an HMAC under the cluster's key
                {{MocoWireSerializer.Name}} = "MoCo.Actors.Serialization.MocoWireSerializer, MoCo.Actors"
                # in place of Akka's JSON serializer (same identifier): refuses both ways
                json = "MoCo.Actors.Serialization.RefusingJsonSerializer, MoCo.Actors"
              }
              serialization-identifiers {
                "MoCo.Actors.Serialization.RefusingJsonSerializer, MoCo.Actors" = {{RefusingJsonSerializer.Id}}
              }
              # the journal's events and snapshots go through Hyperion, the messages between processes through moco-wire;
              # nothing else of ours has a serializer
              serialization-bindings {
                "MoCo.Actors.IJournalMessage, MoCo.Actors" = hyperion
                "MoCo.Actors.IWireMessage, MoCo.Actors" = {{MocoWireSerializer.Name}}
              }
              serialization-settings {
                # a type without a binding of its own is refused instead of falling back to System.Object's (JSON)
                allow-unregistered-types = false
                hyperion {
                  # refuse the types Hyperion knows to be dangerous, and every type outside allowed-types
                  disallow-unsafe-type = true
                  # the journal's event and snapshot types and what they hold (HyperionAllowList.Journal)
                  allowed-types = [{{journal}}]
                }
                {{MocoWireSerializer.Name}} {
                  disallow-unsafe-type = true
                  # the message types between processes and what they hold (HyperionAllowList.Wire)
                  allowed-types = [{{wire}}]
                  # HMAC-SHA256 key of the messages (derived from the cluster's secret)
                  key = "{{Convert.ToBase64String(wireKey)}}"
                }
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
