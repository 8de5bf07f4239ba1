namespace MoCo.Actors;

/// <summary>
/// Marks every message, event and snapshot of our own that crosses a serializer boundary (the journal, the
/// snapshot store, later remoting). The serialization binding and the serializer's allow-list are keyed on it,
/// so nothing outside our own types is ever bound to Hyperion by us.
/// </summary>
public interface IMocoMessage
{
}
