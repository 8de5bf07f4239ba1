namespace MoCo.Actors.Tests.Collectives;

/// <summary>Assertions on error messages that print the whole message when they fail.</summary>
internal static class Messages
{
    /// <summary>Fails unless <paramref name="message"/> contains <paramref name="expected"/>.</summary>
    public static void AssertMentions(string? message, string expected) =>
        Assert.True(message?.Contains(expected, StringComparison.Ordinal) == true, $"expected the message to mention \"{expected}\", but it says: {message}");
}
