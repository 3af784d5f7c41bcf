// One Fast DDS participant in its own process, loading one enclave as rmw_fastrtps_cpp would.
//
// The same contract as cobot_security/dds/agent.py (the Cyclone DDS agent): it creates the
// participant with the properties it is given (cobot_security.dds.properties computes them from
// the enclave, exactly as rmw_fastrtps_cpp sets them), tries every writer and reader it was asked
// for, writes a sample "<name>|<seq>|<marker>" on each writer every period, and reports what
// happened as JSON lines on stdout:
//   {"event":"participant","ok":bool,"code":int,"error":str}
//   {"event":"writer"|"reader","topic":str,"ok":bool,"code":int,"error":str}
//   {"event":"ready"}  {"event":"received","topic":str,"sender":str}  {"event":"stopped",...}
// It stops at end of stdin (the parent closes it) or at its deadline.
//
// Fast DDS returns a null entity when access control refuses it and says why only in its log, so
// a log consumer keeps the last error: a refusal logged by the security plugins is reported with
// code -13 (DDS_RETCODE_NOT_ALLOWED_BY_SECURITY, the code every agent uses for it).
//
// Usage: agent --name N --domain D [--property K=V]... [--writer T]... [--reader T]...
//              [--marker M] [--period S] [--deadline S]

#include <fastdds/dds/domain/DomainParticipant.hpp>
#include <fastdds/dds/domain/DomainParticipantFactory.hpp>
#include <fastdds/dds/domain/qos/DomainParticipantQos.hpp>
#include <fastdds/dds/log/Log.hpp>
#include <fastdds/dds/publisher/DataWriter.hpp>
#include <fastdds/dds/publisher/Publisher.hpp>
#include <fastdds/dds/subscriber/DataReader.hpp>
#include <fastdds/dds/subscriber/SampleInfo.hpp>
#include <fastdds/dds/subscriber/Subscriber.hpp>
#include <fastdds/dds/topic/Topic.hpp>
#include <fastdds/dds/topic/TopicDataType.hpp>
#include <fastdds/dds/topic/TypeSupport.hpp>
#include <fastdds/rtps/transport/UDPv4TransportDescriptor.h>
#include <fastrtps/utils/IPLocator.h>

#include <sys/select.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fdds = eprosima::fastdds::dds;
namespace rtps = eprosima::fastrtps::rtps;

namespace
{

constexpr int kNotAllowedBySecurity = -13;
constexpr int kError = -1;

std::string json_string(const std::string & text)
{
  std::ostringstream out;
  out << '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"': out << "\\\""; break;
      case '\\': out << "\\\\"; break;
      case '\n': out << "\\n"; break;
      case '\r': out << "\\r"; break;
      case '\t': out << "\\t"; break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
          out << buffer;
        } else {
          out << c;
        }
    }
  }
  out << '"';
  return out.str();
}

void emit(const std::string & body)
{
  std::cout << "{" << body << "}" << std::endl;
}

// The errors Fast DDS logged since the last take(); a refusal by the security plugins wins over
// the generic "Problem creating associated Writer" that follows it.
class ErrorCapture : public fdds::LogConsumer
{
public:
  void Consume(const fdds::Log::Entry & entry) override
  {
    if (entry.kind != fdds::Log::Kind::Error) {
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string category = entry.context.category ? entry.context.category : "";
    const std::string text = category + ": " + entry.message;
    if (category.find("SECURITY") != std::string::npos) {
      if (security_.empty()) {
        security_ = text;
      }
    } else if (other_.empty()) {
      other_ = text;
    }
  }

  // Flush the log thread, then return (and forget) the error to report and whether security refused.
  std::pair<std::string, bool> take()
  {
    fdds::Log::Flush();
    std::lock_guard<std::mutex> lock(mutex_);
    std::pair<std::string, bool> result;
    if (!security_.empty()) {
      result = std::make_pair(security_, true);
    } else {
      result = std::make_pair(other_.empty() ? std::string("entity not created") : other_, false);
    }
    security_.clear();
    other_.clear();
    return result;
  }

private:
  std::mutex mutex_;
  std::string security_;
  std::string other_;
};

std::string outcome_fields(bool ok, ErrorCapture & capture)
{
  if (ok) {
    capture.take();
    return "\"ok\":true";
  }
  auto error = capture.take();
  const int code = error.second ? kNotAllowedBySecurity : kError;
  return "\"ok\":false,\"code\":" + std::to_string(code) + ",\"error\":" +
         json_string(error.first.substr(0, 200));
}

// std_msgs/String on the wire as rmw names it: one CDR string, little endian.
struct StringSample
{
  std::string data;
};

class StringType : public fdds::TopicDataType
{
public:
  StringType()
  {
    setName("std_msgs::msg::dds_::String_");
    m_typeSize = 4 + 4 + 256;
    m_isGetKeyDefined = false;
  }

  bool serialize(void * data, rtps::SerializedPayload_t * payload) override
  {
    const std::string & text = static_cast<StringSample *>(data)->data;
    const uint32_t length = static_cast<uint32_t>(text.size() + 1);
    const uint32_t needed = 4 + 4 + length;
    if (payload->max_size < needed) {
      payload->reserve(needed);
    }
    const unsigned char header[4] = {0x00, 0x01, 0x00, 0x00};  // CDR_LE encapsulation
    std::memcpy(payload->data, header, 4);
    for (int i = 0; i < 4; ++i) {
      payload->data[4 + i] = static_cast<unsigned char>((length >> (8 * i)) & 0xff);
    }
    std::memcpy(payload->data + 8, text.c_str(), length);
    payload->length = needed;
    payload->encapsulation = CDR_LE;
    return true;
  }

  bool deserialize(rtps::SerializedPayload_t * payload, void * data) override
  {
    if (payload->length < 8) {
      return false;
    }
    const bool little = payload->data[1] == 0x01;
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) {
      const uint32_t byte = payload->data[4 + (little ? i : 3 - i)];
      length |= byte << (8 * i);
    }
    if (length == 0 || 8 + length > payload->length) {
      return false;
    }
    static_cast<StringSample *>(data)->data.assign(
      reinterpret_cast<const char *>(payload->data + 8), length - 1);
    return true;
  }

  std::function<uint32_t()> getSerializedSizeProvider(void * data) override
  {
    const std::size_t size = static_cast<StringSample *>(data)->data.size();
    return [size]() {return static_cast<uint32_t>(4 + 4 + size + 1);};
  }

  void * createData() override {return new StringSample();}

  void deleteData(void * data) override {delete static_cast<StringSample *>(data);}

  bool getKey(void *, rtps::InstanceHandle_t *, bool) override {return false;}
};

struct Options
{
  std::string name;
  int domain = -1;
  std::vector<std::pair<std::string, std::string>> properties;
  std::vector<std::string> writers;
  std::vector<std::string> readers;
  std::string marker;
  double period_s = 0.1;
  double deadline_s = 60.0;
};

bool parse(int argc, char ** argv, Options & options)
{
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--name") {
      options.name = value;
    } else if (flag == "--domain") {
      options.domain = std::stoi(value);
    } else if (flag == "--property") {
      const auto eq = value.find('=');
      if (eq == std::string::npos) {
        return false;
      }
      options.properties.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (flag == "--writer") {
      options.writers.push_back(value);
    } else if (flag == "--reader") {
      options.readers.push_back(value);
    } else if (flag == "--marker") {
      options.marker = value;
    } else if (flag == "--period") {
      options.period_s = std::stod(value);
    } else if (flag == "--deadline") {
      options.deadline_s = std::stod(value);
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && !options.name.empty() && options.domain >= 0;
}

// Discovery and data on loopback unicast only: proof runs must not leak onto the plant network.
fdds::DomainParticipantQos participant_qos(const Options & options)
{
  fdds::DomainParticipantQos qos;
  qos.name(options.name);
  auto udp = std::make_shared<eprosima::fastdds::rtps::UDPv4TransportDescriptor>();
  udp->interfaceWhiteList.emplace_back("127.0.0.1");
  udp->maxInitialPeersRange = 60;
  qos.transport().use_builtin_transports = false;
  qos.transport().user_transports.push_back(udp);
  rtps::Locator_t peer;
  eprosima::fastrtps::rtps::IPLocator::setIPv4(peer, 127, 0, 0, 1);
  qos.wire_protocol().builtin.initialPeersList.push_back(peer);
  for (const auto & property : options.properties) {
    qos.properties().properties().emplace_back(property.first, property.second);
  }
  return qos;
}

// True when stdin reached its end within the timeout (the parent asks us to stop).
bool stdin_closed(double timeout_s)
{
  fd_set fds;
  FD_ZERO(&fds);
  FD_SET(STDIN_FILENO, &fds);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_s);
  tv.tv_usec = static_cast<suseconds_t>((timeout_s - static_cast<double>(tv.tv_sec)) * 1e6);
  if (select(STDIN_FILENO + 1, &fds, nullptr, nullptr, &tv) <= 0) {
    return false;
  }
  char buffer[256];
  return read(STDIN_FILENO, buffer, sizeof(buffer)) <= 0;
}

struct Endpoints
{
  std::map<std::string, fdds::DataWriter *> writers;
  std::map<std::string, fdds::DataReader *> readers;
};

Endpoints create_endpoints(
  fdds::DomainParticipant * participant, fdds::TypeSupport & type, const Options & options,
  ErrorCapture & capture)
{
  Endpoints endpoints;
  std::map<std::string, fdds::Topic *> topics;
  auto topic = [&](const std::string & name) -> fdds::Topic * {
      if (!topics.count(name)) {
        topics[name] = participant->create_topic(name, type.get_type_name(), fdds::TOPIC_QOS_DEFAULT);
      }
      return topics[name];
    };
  fdds::Publisher * publisher = participant->create_publisher(fdds::PUBLISHER_QOS_DEFAULT);
  fdds::Subscriber * subscriber = participant->create_subscriber(fdds::SUBSCRIBER_QOS_DEFAULT);
  fdds::DataWriterQos writer_qos = fdds::DATAWRITER_QOS_DEFAULT;
  writer_qos.reliability().kind = fdds::RELIABLE_RELIABILITY_QOS;
  writer_qos.history().kind = fdds::KEEP_LAST_HISTORY_QOS;
  writer_qos.history().depth = 8;
  fdds::DataReaderQos reader_qos = fdds::DATAREADER_QOS_DEFAULT;
  reader_qos.reliability().kind = fdds::RELIABLE_RELIABILITY_QOS;
  reader_qos.history().kind = fdds::KEEP_LAST_HISTORY_QOS;
  reader_qos.history().depth = 8;
  for (const auto & name : options.writers) {
    fdds::Topic * t = topic(name);
    fdds::DataWriter * writer = t ? publisher->create_datawriter(t, writer_qos) : nullptr;
    if (writer) {
      endpoints.writers[name] = writer;
    }
    emit("\"event\":\"writer\",\"topic\":" + json_string(name) + "," + outcome_fields(writer, capture));
  }
  for (const auto & name : options.readers) {
    fdds::Topic * t = topic(name);
    fdds::DataReader * reader = t ? subscriber->create_datareader(t, reader_qos) : nullptr;
    if (reader) {
      endpoints.readers[name] = reader;
    }
    emit("\"event\":\"reader\",\"topic\":" + json_string(name) + "," + outcome_fields(reader, capture));
  }
  return endpoints;
}

long exchange(const Endpoints & endpoints, const Options & options)
{
  std::set<std::pair<std::string, std::string>> seen;
  const auto deadline = std::chrono::steady_clock::now() +
    std::chrono::milliseconds(static_cast<long>(options.deadline_s * 1000));
  long sequence = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto & entry : endpoints.writers) {
      StringSample sample{options.name + "|" + std::to_string(sequence) + "|" + options.marker};
      entry.second->write(&sample);
    }
    ++sequence;
    for (const auto & entry : endpoints.readers) {
      StringSample sample;
      fdds::SampleInfo info;
      for (int i = 0; i < 32 && entry.second->take_next_sample(&sample, &info) == ReturnCode_t::RETCODE_OK;
        ++i)
      {
        if (!info.valid_data) {
          continue;
        }
        const std::string sender = sample.data.substr(0, sample.data.find('|'));
        // Own samples loop back locally; they prove nothing about other participants.
        if (sender != options.name && seen.emplace(entry.first, sender).second) {
          emit("\"event\":\"received\",\"topic\":" + json_string(entry.first) + ",\"sender\":" +
            json_string(sender));
        }
      }
    }
    if (stdin_closed(options.period_s)) {
      break;
    }
  }
  return sequence;
}

}  // namespace

int main(int argc, char ** argv)
{
  Options options;
  try {
    if (!parse(argc, argv, options)) {
      emit("\"event\":\"fatal\",\"error\":\"usage: agent --name N --domain D [--property K=V]... "
        "[--writer T]... [--reader T]... [--marker M] [--period S] [--deadline S]\"");
      return 2;
    }
  } catch (const std::exception & exc) {
    emit("\"event\":\"fatal\",\"error\":" + json_string(std::string("bad argument: ") + exc.what()));
    return 2;
  }
  fdds::Log::ClearConsumers();
  auto capture_owner = std::make_unique<ErrorCapture>();
  ErrorCapture & capture = *capture_owner;
  fdds::Log::RegisterConsumer(std::move(capture_owner));
  fdds::Log::SetVerbosity(fdds::Log::Kind::Error);

  auto factory = fdds::DomainParticipantFactory::get_instance();
  fdds::DomainParticipant * participant =
    factory->create_participant(static_cast<uint32_t>(options.domain), participant_qos(options));
  emit("\"event\":\"participant\"," + outcome_fields(participant, capture));
  if (!participant) {
    fdds::Log::Flush();
    return 0;
  }
  fdds::TypeSupport type(new StringType());
  type.register_type(participant);
  Endpoints endpoints = create_endpoints(participant, type, options, capture);
  emit("\"event\":\"ready\"");
  const long written = exchange(endpoints, options);
  emit("\"event\":\"stopped\",\"samples_written\":" + std::to_string(written));
  participant->delete_contained_entities();
  factory->delete_participant(participant);
  fdds::Log::Flush();
  return 0;
}
