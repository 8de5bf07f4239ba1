using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MoCo.Actors.Persistence;
using MoCo.Host.Commands;
using MoCo.Host.Configuration;
using MoCo.Host.History;
using MoCo.Host.Hosting;

namespace MoCo.Host.Tests;

/// <summary>
/// The cluster secret's strength rule, its binding to the certificate's private key, and the journal connection
/// strings that must never show a password.
/// </summary>
public sealed class ClusterSecretTests
{
    [Theory]
    [InlineData("0123456789abcdef0123")]          // 20 hex digits: 80 bits
    [InlineData("0123456789012345678901234567890")] // 31 decimal digits: 103 bits
    [InlineData("abababababababababababababababababababab")] // 2 distinct characters: 40 bits
    [InlineData("passwordpassword")]              // 7 distinct characters: degenerate
    [InlineData("correct-horse-battery")]         // 21 characters of 59: 124 bits
    public void A_weak_secret_is_refused_with_its_estimate_and_the_remedy(string secret)
    {
        var cluster = new ClusterSettings { Secret = secret };

        var e = Assert.Throws<ConfigurationError>(() => cluster.Validate());

        Assert.Contains("moco.cluster.secret is too weak", e.Message, StringComparison.Ordinal);
        Assert.Contains("at least 128 are needed", e.Message, StringComparison.Ordinal);
        Assert.Contains("openssl rand -hex 32", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_secrets_of_128_bits_or_more_pass_and_the_estimate_is_the_alphabets()
    {
        string hex32 = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));      // openssl rand -hex 16
        string hex64 = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));      // openssl rand -hex 32
        string base64 = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));       // openssl rand -base64 24

        // 32 hex digits drawn at random carry 128 bits, whichever of the 16 digits happen to occur
        Assert.Equal(32 * 4.0, ClusterSettings.EstimatedSecretBits("0123456789abcdef0123456789abcdef"), 9);
        Assert.Equal(0.0, ClusterSettings.EstimatedSecretBits(new string('x', 64)));
        foreach (var secret in new[] { hex64, base64, "security-test-secret-0123456789" })
        {
            Assert.Same(new ClusterSettings { Secret = secret }.Validate().GetType(), typeof(ClusterSettings));
            Assert.True(ClusterSettings.EstimatedSecretBits(secret) >= ClusterSettings.MinSecretBits, secret);
        }

        Assert.Equal(128.0, ClusterSettings.EstimatedSecretBits(hex32), 9);
        new ClusterSettings { Secret = hex32 }.Validate();
    }

    [Fact]
    public void The_placeholder_secret_is_refused_by_name()
    {
        var e = Assert.Throws<ConfigurationError>(() => new ClusterSettings { Secret = "CHANGE-ME-to-a-long-random-secret" }.Validate());
        Assert.Contains("still the placeholder", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void With_a_certificate_every_key_derives_from_the_secret_bound_to_its_private_key()
    {
        string dir = Directory.CreateTempSubdirectory("moco-bind-").FullName;
        try
        {
            string secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            string first = Path.Combine(dir, "a.pem");
            string second = Path.Combine(dir, "b.pem");
            File.WriteAllText(first, ClusterCertificate.Create("a", 1).Pem);
            File.WriteAllText(second, ClusterCertificate.Create("a", 1).Pem);
            string copy = Path.Combine(dir, "a-copy.pem");
            File.Copy(first, copy);

            byte[] bare = TrainingHost.ClusterKeyMaterial(new ClusterSettings { Secret = secret });
            byte[] bound = TrainingHost.ClusterKeyMaterial(new ClusterSettings { Secret = secret, Certificate = first });
            byte[] boundCopy = TrainingHost.ClusterKeyMaterial(new ClusterSettings { Secret = secret, Certificate = copy });
            byte[] otherCertificate = TrainingHost.ClusterKeyMaterial(new ClusterSettings { Secret = secret, Certificate = second });
            byte[] otherSecret = TrainingHost.ClusterKeyMaterial(new ClusterSettings { Secret = secret[..^1] + (secret[^1] == '0' ? '1' : '0'), Certificate = first });

            Assert.Equal(Encoding.UTF8.GetBytes(secret), bare);     // no certificate: the secret itself (single process)
            Assert.Equal(32, bound.Length);
            Assert.Equal(bound, boundCopy);                           // every node holding the file derives the same key
            Assert.NotEqual(bound, bare);
            Assert.NotEqual(bound, otherCertificate);                 // the same secret under another key: another key material
            Assert.NotEqual(bound, otherSecret);

            // what the bound key is, computed here independently: HKDF-Extract(salt = SHA-256(label ‖ PKCS#8 key), ikm = secret)
            using var certificate = X509Certificate2.CreateFromPemFile(first);
            using var key = certificate.GetECDsaPrivateKey()!;
            byte[] salt = SHA256.HashData([.. "moco-cluster-key/v1"u8, .. key.ExportPkcs8PrivateKey()]);
            Assert.Equal(HMACSHA256.HashData(salt, Encoding.UTF8.GetBytes(secret)), bound);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("Host=db;Port=5432;Database=moco;Username=moco;Password=s3cr3t-pw", "Password=***")]
    [InlineData("host=db;pwd=s3cr3t-pw;database=moco", "pwd=***")]
    [InlineData("postgres://moco:s3cr3t-pw@db:5432/moco", "moco:***@db")]
    public void A_connection_string_is_printed_without_its_password(string connectionString, string expected)
    {
        string shown = RunJournal.Redact(connectionString);

        Assert.DoesNotContain("s3cr3t-pw", shown, StringComparison.Ordinal);
        Assert.Contains(expected, shown, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_on_a_connection_string_names_it_without_its_password()
    {
        var (code, output) = TrainCommandTests.Run(["replay", "Host=127.0.0.1;Port=1;Database=moco;Username=moco;Password=s3cr3t-pw", "--verify"]);

        Assert.NotEqual(0, code);
        Assert.Contains("--verify needs the run directory", output, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t-pw", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Env_journal_reads_the_connection_string_from_the_variable_and_names_a_missing_one()
    {
        string name = "MOCO_TEST_JOURNAL_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(name, "/some/run");
        try
        {
            Assert.Equal("/some/run", HistoryCommands.ResolveJournal("env:" + name));
            Assert.Equal("/plain/path", HistoryCommands.ResolveJournal("/plain/path"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }

        var e = Assert.Throws<HistoryError>(() => HistoryCommands.ResolveJournal("env:" + name));
        Assert.Contains($"the environment variable '{name}' is not set", e.Message, StringComparison.Ordinal);
    }
}
