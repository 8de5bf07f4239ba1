namespace MoCo.Host.Configuration;

/// <summary>The <c>moco.journal</c> section: where the run recorder's events go.</summary>
public sealed record JournalSettings
{
    /// <summary>
    /// A PostgreSQL connection string (<c>Host=...;Database=...;Username=...;Password=...</c> or a <c>postgres://</c> URI);
    /// empty: a SQLite file, <c>journal.db</c>, in the run directory.
    /// </summary>
    public string ConnectionString { get; init; } = "";

    /// <summary>The recorder saves a snapshot of the run's state every this many events.</summary>
    public int SnapshotEvery { get; init; } = 100;

    /// <summary>Throws <see cref="ConfigurationError"/> naming the first unusable key.</summary>
    /// <returns>This.</returns>
    public JournalSettings Validate()
    {
        if (SnapshotEvery < 1)
        {
            throw new ConfigurationError($"moco.journal.snapshot-every must be at least 1, not {SnapshotEvery}");
        }

        if (ConnectionString.Contains("CHANGE-ME", StringComparison.Ordinal))
        {
            // the string itself holds the password: named, never printed
            throw new ConfigurationError("moco.journal.connection-string still holds a placeholder (CHANGE-ME, from k8s/base/secrets.env): "
                + "set a real password in your overlay's Secret (k8s/README.md, \"Secrets\")");
        }

        return this;
    }
}
