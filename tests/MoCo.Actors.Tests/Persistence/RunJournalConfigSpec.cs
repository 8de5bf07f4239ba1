using MoCo.Actors.Persistence;

namespace MoCo.Actors.Tests.Persistence;

/// <summary>The configuration <see cref="RunJournal"/> produces, read back as HOCON (no actor system).</summary>
public sealed class RunJournalConfigSpec
{
    private static readonly string[] PluginPaths =
    [
        "akka.persistence.journal.sql",
        "akka.persistence.snapshot-store.sql",
        "akka.persistence.query.journal.sql",
    ];

    [Fact]
    public void Sqlite_config_points_journal_snapshots_and_query_at_the_same_file()
    {
        var path = Path.Combine(Path.GetTempPath(), "moco run \"1\"", "journal.db");

        var config = RunJournal.Sqlite(path);

        Assert.Equal(RunJournal.JournalPluginId, config.GetString("akka.persistence.journal.plugin"));
        Assert.Equal(RunJournal.SnapshotStorePluginId, config.GetString("akka.persistence.snapshot-store.plugin"));
        foreach (var plugin in PluginPaths)
        {
            Assert.Equal("SQLite.MS", config.GetString(plugin + ".provider-name"));
            Assert.Equal(RunJournal.SqliteConnectionString(path), config.GetString(plugin + ".connection-string"));
            Assert.Equal("default", config.GetString(plugin + ".table-mapping"));
        }

        Assert.Contains(Path.GetFullPath(path), RunJournal.SqliteConnectionString(path));
        Assert.True(config.GetBoolean("akka.persistence.journal.sql.auto-initialize"));
        Assert.True(config.GetBoolean("akka.persistence.snapshot-store.sql.auto-initialize"));
    }

    [Fact]
    public void PostgreSql_config_uses_the_connection_string_verbatim()
    {
        const string cs = "Host=db;Database=moco;Username=moco;Password=p\"w\\d";

        var config = RunJournal.PostgreSql(cs);

        foreach (var plugin in PluginPaths)
        {
            Assert.Equal("PostgreSQL.15", config.GetString(plugin + ".provider-name"));
            Assert.Equal(cs, config.GetString(plugin + ".connection-string"));
        }
    }

    [Fact]
    public void Journal_types_are_bound_to_Hyperion_wire_types_to_the_signed_serializer_and_nothing_else_of_ours()
    {
        var config = RunJournal.Sqlite("journal.db");

        Assert.Equal("hyperion", config.GetString("akka.actor.serialization-bindings.\"MoCo.Actors.IJournalMessage, MoCo.Actors\""));
        Assert.Equal("moco-wire", config.GetString("akka.actor.serialization-bindings.\"MoCo.Actors.IWireMessage, MoCo.Actors\""));
        Assert.Null(config.GetString("akka.actor.serialization-bindings.\"MoCo.Actors.IMocoMessage, MoCo.Actors\"", null));
        Assert.False(config.GetBoolean("akka.actor.serialization-settings.allow-unregistered-types"));
        Assert.StartsWith("MoCo.Actors.Serialization.RefusingJsonSerializer", config.GetString("akka.actor.serializers.json"));
        Assert.StartsWith("MoCo.Actors.Serialization.MocoHyperionSerializer", config.GetString("akka.actor.serializers.hyperion"));
        Assert.True(config.GetBoolean("akka.actor.serialization-settings.hyperion.disallow-unsafe-type"));
        Assert.NotEmpty(config.GetStringList("akka.actor.serialization-settings.hyperion.allowed-types"));
    }
}
