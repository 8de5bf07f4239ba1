using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MoCo.Host.Configuration;

namespace MoCo.Host.Hosting;

/// <summary>
/// The certificate a cluster's nodes share for Akka.Remote's TLS: every node presents it and accepts only peers that
/// present it too (mutual authentication, pinned by thumbprint). One PEM file holds the certificate and its private key;
/// <c>moco cert</c> makes one.
/// </summary>
public static class ClusterCertificate
{
    /// <summary>The environment variable that names the file (the key <c>moco.cluster.certificate</c>).</summary>
    public const string Variable = "MOCO_CLUSTER_CERTIFICATE";

    /// <summary>Days before expiry from which a start warns.</summary>
    public const int WarnDays = 30;

    /// <summary>Loads the certificate and its private key from <paramref name="path"/>.</summary>
    /// <exception cref="ConfigurationError">Missing, unreadable, without a private key, not yet valid or expired (named).</exception>
    public static X509Certificate2 Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigurationError($"moco.cluster.certificate: no file at {path} (make one with `moco cert --out {path}`)");
        }

        if (File.ReadAllText(path).Contains("CHANGE-ME", StringComparison.Ordinal))
        {
            throw new ConfigurationError($"moco.cluster.certificate: {path} is still the placeholder of k8s/base/cluster-tls.pem; make the cluster's "
                + "certificate with `moco cert --out cluster.pem` and replace the Secret moco-cluster-tls in your overlay (k8s/README.md, \"Secrets\")");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(path);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationError($"moco.cluster.certificate: {path} is not a PEM file holding a certificate and its private key ({e.Message})");
        }

        if (!certificate.HasPrivateKey)
        {
            throw new ConfigurationError($"moco.cluster.certificate: {path} holds no private key (the file needs the certificate and its key, as `moco cert` writes it)");
        }

        var now = DateTime.UtcNow;
        if (certificate.NotBefore.ToUniversalTime() > now)
        {
            throw new ConfigurationError($"moco.cluster.certificate: {path} is not valid before {certificate.NotBefore.ToUniversalTime():u}");
        }

        if (certificate.NotAfter.ToUniversalTime() <= now)
        {
            throw new ConfigurationError($"moco.cluster.certificate: {path} expired on {certificate.NotAfter.ToUniversalTime():u}; make a new one with `moco cert` and give it to every node");
        }

        return certificate;
    }

    /// <summary>
    /// The cluster's secret bound to the certificate's private key: HKDF-Extract(SHA-256, salt = SHA-256("moco-cluster-key/v1"
    /// ‖ the key in PKCS#8), ikm = secret), 32 bytes. Every node holds the same certificate, so every node derives the same
    /// bytes; whoever lacks the private key cannot test a guess of the secret against anything it recorded.
    /// </summary>
    /// <param name="secret">The secret's bytes.</param>
    /// <param name="certificate">The cluster's certificate with its private key.</param>
    /// <exception cref="ConfigurationError">The private key is neither ECDSA nor RSA, or cannot be exported.</exception>
    public static byte[] BindSecret(ReadOnlySpan<byte> secret, X509Certificate2 certificate)
    {
        byte[] key;
        try
        {
            using var ec = certificate.GetECDsaPrivateKey();
            using var rsa = ec is null ? certificate.GetRSAPrivateKey() : null;
            key = ec?.ExportPkcs8PrivateKey() ?? rsa?.ExportPkcs8PrivateKey()
                ?? throw new ConfigurationError("moco.cluster.certificate: its private key is neither ECDSA nor RSA (make one with `moco cert`)");
        }
        catch (CryptographicException e)
        {
            throw new ConfigurationError($"moco.cluster.certificate: its private key cannot be read ({e.Message})");
        }

        try
        {
            var salt = SHA256.HashData([.. "moco-cluster-key/v1"u8, .. key]);
            return HKDF.Extract(HashAlgorithmName.SHA256, secret.ToArray(), salt);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Whether the certificate expires within <see cref="WarnDays"/>.</summary>
    public static bool ExpiresSoon(X509Certificate2 certificate) => certificate.NotAfter.ToUniversalTime() < DateTime.UtcNow.AddDays(WarnDays);

    /// <summary>
    /// A new self-signed certificate for a cluster: ECDSA P-256, for TLS server and client authentication, valid for
    /// <paramref name="days"/> days; returned as one PEM text (certificate, then PKCS#8 private key).
    /// </summary>
    public static (string Pem, X509Certificate2 Certificate) Create(string name, int days)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(days, 1);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "server authentication"), new Oid("1.3.6.1.5.5.7.3.2", "client authentication")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(days));
        var pem = certificate.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n";
        return (pem, certificate);
    }

    /// <summary>Whether <paramref name="hostname"/> is a loopback address (127.0.0.0/8, ::1 or localhost).</summary>
    public static bool IsLoopback(string hostname) =>
        string.Equals(hostname, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(hostname, out var address) && IPAddress.IsLoopback(address));
}
