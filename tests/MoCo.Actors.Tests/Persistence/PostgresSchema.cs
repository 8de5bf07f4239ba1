using Npgsql;

namespace MoCo.Actors.Tests.Persistence;

/// <summary>
/// A schema of its own for one test on the server <see cref="PostgresFactAttribute.ConnectionString"/> names: created
/// empty, put first on the connection's search path (so the journal's tables land in it), dropped on dispose.
/// </summary>
public sealed class PostgresSchema : IDisposable
{
    private readonly string _serverConnectionString;

    private PostgresSchema(string serverConnectionString, string name, string connectionString)
    {
        _serverConnectionString = serverConnectionString;
        Name = name;
        ConnectionString = connectionString;
    }

    /// <summary>The schema's name.</summary>
    public string Name { get; }

    /// <summary>The server's connection string with the schema as its search path.</summary>
    public string ConnectionString { get; }

    /// <summary>Creates a fresh schema, or returns null when no server is configured.</summary>
    public static PostgresSchema? TryCreate()
    {
        var server = PostgresFactAttribute.ConnectionString;
        if (server is null)
        {
            return null;
        }

        var name = "moco_test_" + Guid.NewGuid().ToString("N");
        using (var connection = new NpgsqlConnection(server))
        {
            connection.Open();
            using var command = new NpgsqlCommand($"CREATE SCHEMA \"{name}\"", connection);
            command.ExecuteNonQuery();
        }

        var builder = new NpgsqlConnectionStringBuilder(server) { SearchPath = name };
        return new PostgresSchema(server, name, builder.ConnectionString);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        using var connection = new NpgsqlConnection(_serverConnectionString);
        connection.Open();
        using var command = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{Name}\" CASCADE", connection);
        command.ExecuteNonQuery();
    }
}
