namespace MoCo.Host.Configuration;

/// <summary>A configuration file, environment variable or flag is wrong; the message says which and why.</summary>
public sealed class ConfigurationError : Exception
{
    public ConfigurationError(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
