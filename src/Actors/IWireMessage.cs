namespace MoCo.Actors;

/// <summary>
/// A message that crosses between the processes of a cluster (the director and the workers and node agents on other
/// nodes). Only these travel over remoting, through <see cref="Serialization.MocoWireSerializer"/>: an allow-list of
/// these types, and an HMAC under a key derived from the cluster's secret, checked before anything is deserialized.
/// A message that is neither this nor an <see cref="IJournalMessage"/> stays within its process: the serializers refuse
/// to send it and no serializer of ours accepts it from the network.
/// </summary>
public interface IWireMessage : IMocoMessage
{
}
