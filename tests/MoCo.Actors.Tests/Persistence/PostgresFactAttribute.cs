namespace MoCo.Actors.Tests.Persistence;

/// <summary>
/// A fact that needs a PostgreSQL server, named by the environment variable <see cref="Variable"/> (an Npgsql connection
/// string). Outside CI a missing variable skips the test, saying how to provide it; in CI (<c>CI=true</c>) the test runs
/// and fails with that message, so a CI machine cannot silently lose the PostgreSQL coverage.
/// </summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    /// <summary>The environment variable holding the connection string.</summary>
    public const string Variable = "MOCO_TEST_POSTGRES";

    /// <summary>What to do when the variable is missing.</summary>
    public const string HowToProvide =
        Variable + " is not set: point it at a PostgreSQL 15+ database the tests may create schemas in, e.g. " +
        Variable + "=\"Host=127.0.0.1;Port=5432;Database=moco_test;Username=moco;Password=...\" (.ci/run starts one).";

    /// <summary>Skips the fact outside CI when <see cref="Variable"/> is not set.</summary>
    public PostgresFactAttribute()
    {
        if (ConnectionString is null && !IsCi)
        {
            Skip = HowToProvide;
        }
    }

    /// <summary>The connection string, or null when <see cref="Variable"/> is unset or blank.</summary>
    public static string? ConnectionString
    {
        get
        {
            var value = Environment.GetEnvironmentVariable(Variable);
            return string.IsNullOrWhiteSpace(value) ? null : value;
        }
    }

    /// <summary>Whether the tests run in CI (<c>CI=true</c>).</summary>
    public static bool IsCi => Environment.GetEnvironmentVariable("CI") == "true";
}
